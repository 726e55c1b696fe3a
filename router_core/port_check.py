"""Before listening: is the port free, and if not, who holds it? (uvicorn would only say
"[Errno 98] address already in use" and exit.)"""

from __future__ import annotations

import errno
import socket

import httpx
import psutil


def _holder(port: int) -> str:
    """'PID N (name)' of the process listening on `port`, or '' when the system will not say."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return ""
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            return f"PID {conn.pid} ({name})"
    return ""


def _hybridge_at(url: str) -> str | None:
    """Hybridge's version when one answers at `url` (its /health says so), else None."""
    try:
        body = httpx.get(f"{url}/health", timeout=3.0, trust_env=False).json()
    except (httpx.HTTPError, ValueError):
        return None
    if isinstance(body, dict) and body.get("status") == "ok" and "version" in body:
        return str(body["version"])
    return None


def port_problem(host: str, port: int) -> str | None:
    """A sentence for a person when `host:port` cannot be listened on; None when it can."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"cannot listen on {host}:{port}: {exc.strerror}"
        else:
            return None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    version = _hybridge_at(url)
    if version is not None:
        return f"another Hybridge ({version}) is already running at {url}"
    holder = _holder(port) or "another program"
    return (
        f"port {port} is used by {holder}: pick another port in Settings (server.port) or run `hybridge serve --port N`"
    )
