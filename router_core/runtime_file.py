"""Where the running router listens: a small file it writes at start and removes on exit.

`hybridge privacy`, `stats`, `explain`, `opencode`, `claude-code` and `token` read it, so
they find a router on any port (`hybridge serve --port 54687`). It lives in the platform's
runtime dir (state dir where there is none; `HYBRIDGE_RUNTIME_DIR` overrides), is readable
by its owner only (0600), and names the router's pid: a file whose pid is gone is stale
(a killed router) and ignored.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson
import platformdirs

APP_NAME = "hybridge"
FILE_NAME = "router.json"
ENV_DIR = "HYBRIDGE_RUNTIME_DIR"


def runtime_dir() -> Path:
    if override := os.environ.get(ENV_DIR):
        return Path(override)
    if sys.platform.startswith("linux") and not os.environ.get("XDG_RUNTIME_DIR"):
        # platformdirs would fall back to a shared /tmp path; the state dir is the user's own.
        return Path(platformdirs.user_state_dir(APP_NAME))
    try:
        return Path(platformdirs.user_runtime_dir(APP_NAME))
    except Exception:  # no runtime dir on this platform
        return Path(platformdirs.user_state_dir(APP_NAME))


def runtime_path() -> Path:
    return runtime_dir() / FILE_NAME


@dataclass(frozen=True, slots=True)
class RouterAddress:
    host: str
    port: int
    pid: int
    version: str

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", "localhost"):
            host = "::1" if host == "::" else "127.0.0.1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True


def write_runtime_file(address: RouterAddress, path: Path | None = None) -> Path:
    """Write it atomically with mode 0600 (the directory 0700)."""
    target = path or runtime_path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = orjson.dumps(
        {"host": address.host, "port": address.port, "pid": address.pid, "version": address.version, "url": address.url}
    )
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".router-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def read_runtime_file(path: Path | None = None) -> RouterAddress | None:
    """The running router's address; None when there is no file, it is unreadable, or stale."""
    try:
        data = orjson.loads((path or runtime_path()).read_bytes())
        address = RouterAddress(str(data["host"]), int(data["port"]), int(data["pid"]), str(data.get("version", "")))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return address if pid_alive(address.pid) else None


def remove_runtime_file(pid: int, path: Path | None = None) -> None:
    """Remove the file if it is still ours (another router may have started since)."""
    target = path or runtime_path()
    try:
        data = orjson.loads(target.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return
    if isinstance(data, dict) and data.get("pid") == pid:
        with contextlib.suppress(OSError):
            target.unlink()


def router_url(url_override: str | None, configured: str) -> tuple[str, str]:
    """(URL, how it was found): --url, else the runtime file, else the settings' address."""
    if url_override:
        return url_override.rstrip("/"), "--url"
    found = read_runtime_file()
    if found is not None:
        return found.url, f"runtime file {runtime_path()}"
    return configured, "settings (no runtime file: is a router running?)"
