"""`pip install hybridge` from the built wheel, on a clean venv: the same commands, resources/
shipped, and `hybridge serve` answering /health.

The wheel is built by packaging/build_wheel.py (`pip wheel --no-deps` on a clean copy of the
tree), then installed into a new venv without system site-packages; its dependencies come
from pip's usual index and cache. Everything runs from outside the source tree, so nothing
is imported from the checkout by accident.
"""

from __future__ import annotations

import argparse
import email.parser
import os
import re
import signal
import subprocess
import sys
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from router_core.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BIN = "Scripts" if sys.platform.startswith("win") else "bin"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@dataclass
class Installed:
    wheel: Path
    venv: Path
    work: Path

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / BIN / "hybridge"), *args],
            cwd=self.work, env=clean_env(self.work), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def clean_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update({"XDG_CONFIG_HOME": str(work / "config"), "XDG_DATA_HOME": str(work / "data")})
    env["OLLAMA_HOST"] = "http://127.0.0.1:9"  # nothing there: the router starts without a local model
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_wheel.py"), str(base / "dist")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = Path(built.stdout.strip().splitlines()[-1])
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    pip = [str(env_dir / BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, str(wheel)], cwd=base, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    work = base / "work"
    work.mkdir()
    yield Installed(wheel, env_dir, work)


def test_the_wheel_ships_resources_and_nothing_else(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = f"hybridge-{VERSION}.dist-info"
        metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    shipped = {n.removeprefix("router_core/resources/") for n in names if n.startswith("router_core/resources/")}
    in_tree = {p.name for p in (ROOT / "resources").iterdir() if p.is_file()}
    assert shipped == in_tree  # every resource, e.g. a new icon, reaches users
    assert {"default_config.toml", "prices.toml", "hybridge.svg", "tray-local.svg", "__init__.py"} <= shipped
    assert {"router_core/py.typed", "router_core/cli.py", "app/main.py", "app/autostart.py"} <= names
    assert {n.split("/")[0] for n in names} == {"router_core", "app", dist_info}  # no tests/, bench/, packaging/
    assert metadata["Name"] == "hybridge" and metadata["Version"] == VERSION
    assert {"gui", "test", "packaging"} <= set(metadata.get_all("Provides-Extra") or [])
    assert re.search(r"^hybridge = router_core\.cli:main$", entry_points, re.M)


def subcommands(help_text: str) -> set[str]:
    match = re.search(r"\{([a-z,_-]+)\}", help_text)
    assert match, help_text
    return set(match[1].split(","))


def test_a_clean_venv_brings_the_same_commands(installed: Installed) -> None:
    version = installed.run("--version")
    assert (version.returncode, version.stdout) == (0, f"hybridge {VERSION}\n")  # read from the dist-info

    source = build_parser()
    expected = next(a for a in source._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert subcommands(installed.run("--help").stdout) == set(expected)

    where = subprocess.run(
        [str(installed.venv / BIN / "python"), "-c", "import router_core, app; print(router_core.__file__, app.__file__)"],
        cwd=installed.work, env=clean_env(installed.work), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert all(Path(p).is_relative_to(installed.venv) for p in where.stdout.split()), where
    # The base install has no Qt: the tray says which extra brings it.
    tray = installed.run()
    assert tray.returncode == 2 and "pip install 'hybridge[gui]'" in tray.stderr


def test_hybridge_serve_from_the_wheel_answers_health(installed: Installed) -> None:
    config = installed.work / "config.toml"
    config.write_text(f'[ledger]\npath = "{(installed.work / "ledger.sqlite3").as_posix()}"\n')
    command = [str(installed.venv / BIN / "hybridge"), "serve", "--port", "0", "--config", str(config)]
    env = clean_env(installed.work)
    process = subprocess.Popen(
        command, cwd=installed.work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(rf"hybridge {re.escape(VERSION)}: serving on (http://127\.0\.0\.1:\d+)/v1\n", line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")  # type: ignore[union-attr]
        health = httpx.get(match[1] + "/health", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok", "version": VERSION}
        models = httpx.get(match[1] + "/v1/models", timeout=10)
        assert models.status_code == 200 and [m["id"] for m in models.json()["data"]][:2] == ["auto", "local"]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # Ctrl+C is a graceful stop: uvicorn drains, the ledger is closed, exit 0.
    assert process.returncode == 0 and "Traceback" not in err, err
    assert (installed.work / "ledger.sqlite3").exists()  # the settings file was read: the ledger is where it says
