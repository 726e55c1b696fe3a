"""Take the README's screenshots of the tray app, under Xvfb with a tray host.

    scripts/screenshots.sh            # installs xvfb, trayer, imagemagick, xdotool, then runs this

The router, tray and dashboard are the real app (app.main.AppShell) on an X server (Xvfb)
with `trayer` as the system tray. Three runs:

1. The first run, step by step, on a fresh settings file: no Ollama; Ollama installed but
   stopped (`ollama` is scripts/ollama, the test engine standing in for it, which *Start
   Ollama* really starts); running without the model; the model pulled with progress; a
   wrong cloud key refused and a good one stored; then, the agent set up, the first answer.
2. Failures: the port taken by another program (the tray menu with Retry), and a cloud
   model without a key refused in Settings.
3. Real traffic: local answers, cloud answers, requests blocked by privacy mode ("refuse"),
   and a failed request with its error in the row's tooltip.

Local requests are answered by the real model the tests use (Gemma 3 270M in llama.cpp's
llama-server, behind the Ollama-API test engine); flagged requests go to the fake
OpenAI-compatible cloud of the tests (no network here). The hardware panel shows this
machine as it is. Pictures are written to docs/screenshots/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

SCREEN = (1680, 1000)


@contextmanager
def process(args: list[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.02)


def _pump(seconds: float) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def grab(display: str, out: Path, crop: tuple[int, int, int, int] | None = None) -> None:
    """The X screen (or a part of it) with ImageMagick's `import`."""
    args = ["import", "-display", display, "-window", "root"]
    if crop is not None:
        w, h, x, y = crop
        args += ["-crop", f"{w}x{h}+{x}+{y}", "+repage"]
    subprocess.run([*args, str(out)], check=True)
    print(f"wrote {out.relative_to(ROOT)}")


OPENCODE_AGENT = "opencode/1.18.33 ai-sdk/provider-utils/3.0.9 runtime/bun/1.2.21"
# The traffic run's requests, in order (a tag flags the work: cloud, or blocked in privacy mode).
SESSION = (
    ("Explain what a race condition is, briefly.", None),
    ("Add a NOT NULL column to the users table.", "schema"),
    ("Write a haiku about compilers.", None),
    ("Rotate the OAuth signing keys.", "auth"),
    ("Migrate the orders table to the new schema.", "migration"),
    ("Rename the variable `tmp` to something clearer.", None),
    ("Review the billing webhook handler.", "billing"),
    ("Mock up the settings page layout.", "ui-mock"),
    ("Suggest a name for a function that parses dates.", None),
    ("Summarize what a B-tree is.", None),
)


def ask(base_url: str, prompt: str, tag: str | None = None, model: str = "auto") -> None:
    """One streamed request off the GUI thread, the GUI painting meanwhile; errors are rows too."""
    done = threading.Event()

    def run() -> None:
        headers = {"user-agent": OPENCODE_AGENT, **({"x-hybridge-tags": tag} if tag else {})}
        body = {"model": model, "stream": True, "max_tokens": 24, "messages": [{"role": "user", "content": prompt}]}
        try:
            with (
                httpx.Client(timeout=300) as client,
                client.stream("POST", f"{base_url}/chat/completions", json=body, headers=headers) as response,
            ):
                for _ in response.iter_bytes():
                    pass
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    wait_for(done.is_set, 320, f"the answer to {prompt!r}")
    _pump(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--display", default=":97")
    parser.add_argument("--seconds", type=float, default=5, help="pause after the traffic, then the shots")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--only", nargs="+", default=["first-run", "failures", "traffic"], choices=["first-run", "failures", "traffic"]
    )
    args = parser.parse_args()
    for tool in ("Xvfb", "trayer", "import", "xdotool"):
        if shutil.which(tool) is None:
            print(f"screenshots: {tool} is missing; run scripts/screenshots.sh", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hybridge-shots-"))
    # The app's own files (settings, ledger) stay in the scratch folder.
    os.environ.update(
        DISPLAY=args.display,
        QT_QPA_PLATFORM="xcb",
        XDG_CONFIG_HOME=str(work / "config"),
        XDG_DATA_HOME=str(work / "data"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    os.environ.pop("WAYLAND_DISPLAY", None)
    width, height = SCREEN
    with process(["Xvfb", args.display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"]):
        time.sleep(1.0)
        tray_args = [
            "trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
            "--SetDockType", "true", "--distance", "4", "--margin", "4",
            "--transparent", "false", "--tint", "0x2b2b2b", "--expand", "true",
        ]  # fmt: skip
        with process(tray_args):
            time.sleep(1.0)
            return run(args, work)


def grab_window(display: str, out: Path, widget: Any) -> None:
    geometry = widget.frameGeometry()
    grab(display, out, (geometry.width(), geometry.height(), geometry.x(), geometry.y()))


def grab_tray_menu(display: str, out: Path, shell: Any) -> None:
    """Right-click the icon in the tray host, as a user would, and take the screen's top-right
    corner: the panel, the icon and its menu (rebuilt as it opens, so every line is current)."""
    icon = shell.tray.icon.geometry()
    if icon.isValid() and icon.width() > 0:
        x, y = icon.center().x(), icon.center().y()
        subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "3"], check=True, env=os.environ)
    else:  # the tray host did not report where the icon is
        shell.tray.menu.popup(shell.tray.icon.geometry().bottomLeft())
    wait_for(shell.tray.menu.isVisible, 5, "the tray menu")
    _pump(1.0)
    menu = shell.tray.menu.geometry()
    left = max(min(menu.x(), icon.x()) - 160, 0)
    grab(display, out, (SCREEN[0] - left, menu.bottom() + 24, left, 0))
    shell.tray.menu.hide()
    _pump(0.3)


def checked(shell: Any, predicate: Callable[[Any], bool], what: str) -> Any:
    """Refresh the first-run checklist until its result satisfies `predicate`."""
    panel = shell.dashboard.first_run
    results: list[Any] = []
    panel.checked.connect(results.append)
    deadline = time.monotonic() + 60
    while not (results and predicate(results[-1])):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for the checklist: {what}")
        panel.refresh()
        _pump(1.0)
    panel.checked.disconnect(results.append)
    return results[-1]


def signalled(signal: Any, action: Callable[[], object], what: str, timeout: float = 60) -> list[Any]:
    """Run `action` and wait for `signal`; its arguments."""
    got: list[Any] = []

    def note(*values: Any) -> None:
        got.append(list(values))

    signal.connect(note)
    try:
        action()
        wait_for(lambda: bool(got), timeout, what)
    finally:
        signal.disconnect(note)
    return got[0]


def engine_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/version", timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def stop_engine(port: int) -> None:
    """Stop the `ollama serve` (test engine) that Start Ollama started, by the port it holds."""
    import psutil

    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            proc = psutil.Process(conn.pid)
            proc.terminate()  # uvicorn stops; the engine then stops its llama-servers
            try:
                proc.wait(30)
            except psutil.TimeoutExpired:
                proc.kill()


def first_run(args: argparse.Namespace, work: Path, cloud_url: str, fake_key: str) -> None:
    """Every step of the first run, on a fresh settings file, from no Ollama to the first answer."""
    from app.main import AppShell
    from router_core.settings import load
    from tests.support.servers import free_port

    folder = work / "first-run"
    folder.mkdir()
    engine_port = free_port()
    engine_url = f"http://127.0.0.1:{engine_port}"
    config = folder / "config.toml"
    # A new user's file: where their Ollama listens, and a cloud provider they may add a key for.
    config.write_text(
        f'[providers.ollama]\nbase_url = "{engine_url}"\n'
        f'[providers.openai]\npreset = "openai"\nbase_url = "{cloud_url}/v1"\n'
    )
    empty, shims = folder / "empty-bin", folder / "bin"
    empty.mkdir()
    shims.mkdir()
    (shims / "ollama").symlink_to(ROOT / "scripts" / "ollama")
    system_path = "/usr/local/bin:/usr/bin:/bin"
    os.environ.update(PATH=f"{empty}:{system_path}", HYBRIDGE_PYTHON=sys.executable)
    os.environ["XDG_CONFIG_HOME"] = str(folder / "xdg-config")
    os.environ["XDG_DATA_HOME"] = str(folder / "xdg-data")
    shell = AppShell(load(config), config, tray=True, port=0)
    try:
        shell.start()
        wait_for(lambda: shell.bridge.running and shell.bridge.inventory is not None, 30, "the router")
        shell.dashboard.resize(1240, 820)
        shell.dashboard.move(20, 40)
        shell.open_dashboard()
        panel = shell.dashboard.first_run
        out = args.out
        # 1. No Ollama at all.
        checked(shell, lambda r: r.check("installed").state == "todo", "Ollama absent")
        _pump(0.5)
        grab_window(args.display, out / "first-run-1-no-ollama.png", shell.dashboard)
        # 2. Installed (on PATH), not running.
        os.environ["PATH"] = f"{shims}:{system_path}"
        checked(shell, lambda r: r.check("installed").state == "ok", "Ollama installed")
        _pump(0.5)
        grab_window(args.display, out / "first-run-2-stopped.png", shell.dashboard)
        # 3. Start Ollama (really starts `ollama serve`: the test engine), no model yet.
        problem = signalled(shell.bridge.ollama_start_result, panel.start_button.click, "Start Ollama")[0]
        if problem:
            raise RuntimeError(f"Start Ollama failed: {problem}")
        wait_for(lambda: engine_up(engine_url), 60, "the test engine")
        result = checked(shell, lambda r: r.check("running").state == "ok" and bool(r.recommended), "no model")
        _pump(0.5)
        grab_window(args.display, out / "first-run-3-no-model.png", shell.dashboard)
        # 4. Pull what doctor recommends, with progress.
        panel.pull_button.click()
        wait_for(lambda: 350 <= panel.progress.value() < 1000, 60, "the pull's progress")
        grab_window(args.display, out / "first-run-4-pulling.png", shell.dashboard)
        signalled(shell.bridge.service_started, lambda: None, "the router with the pulled model", 120)
        checked(shell, lambda r: r.check("model").state == "ok", f"{result.recommended} installed")
        # 5. A cloud key: a wrong one is refused by the cloud and not stored.
        panel.key_provider.setCurrentText("openai")
        panel.key_input.setText("sk-proj-typo-0123456789abcdef")
        signalled(shell.bridge.key_verified, panel.key_button.click, "the wrong key's test call")
        _pump(0.5)
        grab_window(args.display, out / "first-run-5-cloud-key-refused.png", shell.dashboard)
        # 6. The right one is stored; the models it listed are offered as the cloud model.
        panel.key_input.setText(fake_key)
        signalled(shell.bridge.key_verified, panel.key_button.click, "the good key's test call")
        _pump(0.5)
        grab_window(args.display, out / "first-run-6-cloud-key-stored.png", shell.dashboard)
        # 7. The agent set up (`hybridge setup opencode --global --write`), then the first answer.
        subprocess.run(
            [sys.executable, "-m", "router_core", "--config", str(config), "setup", "opencode", "--global",
             "--write", "--port", str(shell.bridge.serving_port or 11435)],
            check=True, env=os.environ, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        checked(shell, lambda r: r.check("agent").state == "ok", "the agent set up")
        ask(shell.bridge.endpoint_url, "Say hello.")
        wait_for(lambda: shell.dashboard.requests.rowCount() >= 1, 15, "the first answer's row")
        first = shell.dashboard.requests.rows[0]
        if first.outcome != "ok" or first.route != "local":
            raise RuntimeError(f"the first local answer failed: {first}")
        _pump(1.5)
        grab_window(args.display, out / "first-run-7-first-answer.png", shell.dashboard)
    finally:
        shell.shutdown()
        shell.dashboard.close()
        stop_engine(engine_port)


def port_taken(args: argparse.Namespace, work: Path) -> None:
    """The router's port held by another program: the tray says who holds it and offers Retry."""
    import socket

    from app.main import AppShell
    from router_core.settings import load

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    config = work / "port.toml"
    config.write_text(f"[server]\nport = {port}\n")
    shell = AppShell(load(config), config, tray=True)
    try:
        signalled(shell.bridge.service_failed, shell.start, "the port failure")
        _pump(1.5)
        grab_tray_menu(args.display, args.out / "failure-port-in-use.png", shell)
    finally:
        holder.close()
        shell.shutdown()
        shell.dashboard.close()


def run(args: argparse.Namespace, work: Path) -> int:
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QToolTip

    from app.icons import app_icon
    from app.main import AppShell
    from app.requests_table import tooltip
    from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud
    from tests.support.fake_ollama import FakeOllama
    from tests.support.llama import LlamaServer
    from tests.support.servers import ThreadedServer, free_port, make_settings

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Hybridge")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)
    wait_for(QSystemTrayIcon.isSystemTrayAvailable, 10, "the tray host")
    cloud = FakeOpenAICloud()
    cloud.state.api_key = API_KEY
    cloud_server = ThreadedServer(cloud.app).start()
    if "first-run" in args.only:
        first_run(args, work, cloud_server.url, API_KEY)
    if "failures" in args.only:
        port_taken(args, work)
    if "traffic" not in args.only:
        cloud_server.stop()
        return 0
    os.environ.update(XDG_CONFIG_HOME=str(work / "config"), XDG_DATA_HOME=str(work / "data"))
    llama = LlamaServer(free_port()).start()
    engine = FakeOllama(llama.url)
    ollama = ThreadedServer(engine.app).start()
    os.environ["FAKE_CLOUD_KEY"] = API_KEY
    settings = make_settings(
        {
            "routing": {"local_model": "ollama/gemma3:270m", "cloud_model": "openai/gpt-4.1"},
            "providers": {
                "ollama": {"kind": "ollama", "base_url": ollama.url},
                "openai": {"kind": "openai", "base_url": f"{cloud_server.url}/v1", "api_key": "env:FAKE_CLOUD_KEY"},
            },
            "budget": {"daily_usd": 5.0},
            # Flagged work in privacy mode is refused (blocked rows), not kept local.
            "privacy": {"escalation": "refuse"},
        }
    )
    # This user finished the first run: OpenCode points at Hybridge (the checklist is hidden).
    subprocess.run(
        [sys.executable, "-m", "router_core", "setup", "opencode", "--global", "--write", "--no-inventory"],
        check=True, env=os.environ, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    shell = AppShell(settings, work / "config.toml", tray=True, port=0)
    try:
        shell.start()
        wait_for(lambda: shell.bridge.running and shell.bridge.inventory is not None, 30, "the router")
        shell.dashboard.resize(1240, 820)
        shell.dashboard.move(20, 40)
        shell.open_dashboard()
        url = shell.bridge.endpoint_url
        # A session's worth of requests, in an order that shows every kind of row: local
        # answers, flagged work answered by the cloud, flagged work blocked while privacy mode
        # refuses it, and a request for a model Ollama does not have (a failed row).
        for prompt, tag in SESSION[:4]:
            ask(url, prompt, tag)
        signalled(shell.bridge.privacy_changed, lambda: shell.bridge.set_privacy(True), "privacy on")
        for prompt, tag in SESSION[4:7]:
            ask(url, prompt, tag)
        signalled(shell.bridge.privacy_changed, lambda: shell.bridge.set_privacy(False), "privacy off")
        ask(url, "Hi", model="ollama/qwen3-coder:30b")
        for prompt, tag in SESSION[7:]:
            ask(url, prompt, tag)
        _pump(args.seconds)
        grab_window(args.display, args.out / "dashboard.png", shell.dashboard)
        # The failed row's tooltip: what went wrong, first.
        table, model = shell.dashboard.table, shell.dashboard.requests
        failed = next(i for i, row in enumerate(model.rows) if row.outcome == "error")
        index = shell.dashboard.requests_filter.mapFromSource(model.index(failed, 4))
        table.scrollTo(index)
        _pump(0.3)
        where = table.viewport().mapToGlobal(table.visualRect(index).center())
        QToolTip.showText(where, tooltip(model.rows[failed]), table)
        _pump(1.0)
        grab_window(args.display, args.out / "dashboard-error-tooltip.png", shell.dashboard)
        QToolTip.hideText()
        shell.dashboard.tabs.setCurrentIndex(1)
        _pump(1.0)
        grab_window(args.display, args.out / "dashboard-models.png", shell.dashboard)
        shell.dashboard.tabs.setCurrentIndex(0)
        # Settings: a cloud model whose provider has no key is refused, with the fix.
        dialog = shell.open_settings()
        dialog.move(120, 90)
        dialog.cloud_model.setEditText("anthropic/claude-sonnet-4-6")
        signalled(dialog.checked, lambda: dialog.apply(close=False), "the settings check")
        _pump(1.0)
        grab_window(args.display, args.out / "failure-settings-no-key.png", dialog)
        dialog.tabs.setCurrentIndex(2)
        _pump(0.5)
        grab_window(args.display, args.out / "settings-providers.png", dialog)
        dialog.reject()
        shell.dashboard.hide()
        _pump(1.0)
        grab_tray_menu(args.display, args.out / "tray-menu.png", shell)
    finally:
        shell.shutdown()
        cloud_server.stop()
        ollama.stop()
        engine.close()  # its runners are llama-servers of their own
        llama.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
