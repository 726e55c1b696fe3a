"""Every example of issue 17, by name: garbage from upstreams, hostile strings and headers,
broken files, hung inventory calls, shutdown mid-stream. Real sockets throughout: Hybridge on
port 0 in front of tests/fakes/scripted_upstream.py."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router_core import cli
from router_core.server.limits import ConnectionLimits, LimitedHttpToolsProtocol
from tests.support.garbage import PATHS, Rig, garbage_rig, sse_events
from tests.support.memory_keyring import MemoryKeyring

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
OK_LINE = b'{"message":{"role":"assistant","content":"hi"},"done":false}\n'


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with garbage_rig(tmp_path_factory.mktemp("garbage"), MemoryKeyring()) as running:
        yield running


def assert_invalid(rig: Rig, response: httpx.Response, provider: str, rows_before: int) -> None:
    """502 upstream_invalid naming the upstream, a ledger row, and a server still serving."""
    assert response.status_code == 502, response.text
    err = response.json()["error"]
    assert f"upstream {provider} returned an invalid answer" in err["message"]
    assert rig.wait_rows(rows_before + 1) == rows_before + 1
    assert rig.last_error_kind() == "upstream_invalid"
    assert rig.healthy()


OLLAMA_BODIES = {
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "empty": b"",
    "array": b"[1,2,3]",
    "string": b'"ok"',
    "message_array": b'{"message":[1]}',
    "cut_off": b'{"message":{"role":"assistant","content":"hel',
}


@pytest.mark.parametrize("name", list(OLLAMA_BODIES))
@pytest.mark.parametrize("stream", [False, True])
def test_ollama_api_chat_wrong_shape_is_502(rig: Rig, name: str, stream: bool) -> None:
    rig.upstream.script("/api/chat", OLLAMA_BODIES[name], content_type=NDJSON if stream else "application/json")
    rows = rig.ledger_rows()
    assert_invalid(rig, rig.chat("ollama", stream=stream), "ollama", rows)


NDJSON_LINES = {
    "number": b"42\n",
    "string": b'"hello"\n',
    "message_string": b'{"message":"hi"}\n',
    "tool_calls_string": b'{"message":{"role":"assistant","content":"","tool_calls":"x"},"done":false}\n',
    "done_string": b'{"message":{"content":"x"},"done":"yes"}\n',
    "counts_string": b'{"message":{"content":""},"done":true,"eval_count":"many"}\n',
}


@pytest.mark.parametrize("name", list(NDJSON_LINES))
def test_ollama_ndjson_line_not_an_answer_is_502(rig: Rig, name: str) -> None:
    rig.upstream.script("/api/chat", [NDJSON_LINES[name]], content_type=NDJSON)
    rows = rig.ledger_rows()
    assert_invalid(rig, rig.chat("ollama", stream=True), "ollama", rows)


def test_ollama_garbage_mid_stream_is_an_error_event(rig: Rig) -> None:
    rig.upstream.script("/api/chat", [OK_LINE, b'{"message":"hi"}\n'], content_type=NDJSON)
    rows = rig.ledger_rows()
    response = rig.chat("ollama", stream=True)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[0]["choices"][0]["delta"]["content"] == "hi"
    assert "upstream ollama returned an invalid answer" in events[-1]["error"]["message"]
    assert rig.wait_rows(rows + 1) == rows + 1 and rig.last_error_kind() == "upstream_invalid"
    assert rig.healthy()


CLOUD_BODIES = {
    ("oai", "array"): b"[1,2]",
    ("oai", "usage_string"): b'{"choices":[{"index":0,"message":{"role":"assistant","content":"x"}}],"usage":"lots"}',
    ("oai", "choices_number"): b'{"choices":5}',
    ("oai", "html"): b"<html>oops</html>",
    ("ant", "array"): b"[1,2]",
    ("ant", "content_number"): b'{"id":"msg_1","type":"message","content":5,"stop_reason":"end_turn"}',
    ("ant", "usage_string"): b'{"id":"msg_1","type":"message","content":[],"usage":"lots"}',
}


@pytest.mark.parametrize("case", list(CLOUD_BODIES), ids=lambda c: f"{c[0]}-{c[1]}")
def test_cloud_wrong_shape_is_502(rig: Rig, case: tuple[str, str]) -> None:
    provider, _ = case
    rig.upstream.script(PATHS[provider], CLOUD_BODIES[case])
    rows = rig.ledger_rows()
    assert_invalid(rig, rig.chat(provider, stream=False), provider, rows)


SSE_EVENTS = {
    ("oai", "choices_string"): b'data: {"choices":"x"}\n\n',
    ("oai", "delta_content_number"): b'data: {"choices":[{"index":0,"delta":{"content":5}}]}\n\n',
    ("oai", "not_json"): b"data: {nope\n\n",
    ("oai", "usage_string"): b'data: {"choices":[],"usage":"lots"}\n\n',
    ("ant", "no_type"): b'event: x\ndata: {"index":0}\n\n',
    ("ant", "delta_text_number"): (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":5}}\n\n'
    ),
    ("ant", "index_string"): b'event: content_block_start\ndata: {"type":"content_block_start","index":"a"}\n\n',
    ("ant", "array"): b"event: x\ndata: [1,2]\n\n",
}


@pytest.mark.parametrize("case", list(SSE_EVENTS), ids=lambda c: f"{c[0]}-{c[1]}")
def test_cloud_sse_event_with_wrong_types_is_502(rig: Rig, case: tuple[str, str]) -> None:
    provider, _ = case
    rig.upstream.script(PATHS[provider], [SSE_EVENTS[case]], content_type=SSE)
    rows = rig.ledger_rows()
    assert_invalid(rig, rig.chat(provider, stream=True), provider, rows)


def test_anthropic_client_gets_anthropic_shaped_502(rig: Rig) -> None:
    rig.upstream.script("/api/chat", b"[1,2,3]")
    response = rig.chat("ollama", stream=False, api="anthropic")
    assert response.status_code == 502
    body = response.json()
    assert body["type"] == "error" and "upstream ollama returned an invalid answer" in body["error"]["message"]


def test_response_format_json_schema_string_is_400(rig: Rig) -> None:
    body = {
        "model": "ollama/m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": "x"},
    }
    response = rig.chat("ollama", stream=False, body=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format.json_schema"


@pytest.mark.parametrize("char", ["\r", "\n", "\x00", "\r\nx-evil: 1"])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_model_name_with_control_characters_is_400(rig: Rig, char: str, api: str) -> None:
    model = f"ollama/m{char}"
    if api == "openai":
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    else:
        body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    response = rig.chat("ollama", stream=False, api=api, body=body)
    assert response.status_code == 400
    assert "control characters" in response.json()["error"]["message"]
    assert rig.healthy()


# -- broken files -----------------------------------------------------------------------------


def _serve(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["serve", "--port", "0", "--config", str(config)])
    return code, capsys.readouterr().err


def test_config_with_one_non_utf8_byte_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b'[server]\nhost = "127.0.0.1\xff"\n')
    code, err = _serve(config, capsys)
    assert code == 2 and str(config) in err and "not UTF-8" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_config_5000_deep_array_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    code, err = _serve(config, capsys)
    assert code == 2 and str(config) in err and "nested too deeply" in err


def test_unreadable_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.mkdir()
    code, err = _serve(config, capsys)
    assert code == 2 and str(config) in err and "cannot be read" in err


def test_corrupt_ledger_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    ledger.write_bytes(b"not a database " * 300)
    config = tmp_path / "config.toml"
    config.write_text(f'[ledger]\npath = "{ledger}"\n')
    code, err = _serve(config, capsys)
    assert code == 2 and str(ledger) in err and "not a database" in err


def test_broken_price_list_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from router_core.ledger import prices

    bad = tmp_path / "prices.toml"
    bad.write_bytes(b"[models.x]\ninput = \xff\n")

    class Files:
        def joinpath(self, name: str) -> Path:
            return bad

    # Only the price module's view of the package data changes (settings keep theirs).
    monkeypatch.setattr(prices, "resources", types.SimpleNamespace(files=lambda _package: Files()))
    config = tmp_path / "config.toml"
    config.write_text("")
    code, err = _serve(config, capsys)
    assert code == 2 and str(bad) in err and "price list" in err


# -- connection limits ------------------------------------------------------------------------


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> ConnectionLimits:
    limits = ConnectionLimits(head_timeout_s=1.0, body_timeout_s=1.0)
    monkeypatch.setattr(LimitedHttpToolsProtocol, "limits", limits)
    return limits


def _raw(rig: Rig, data: bytes, *, wait_s: float = 5.0) -> bytes:
    """Send `data` on a fresh connection; what came back before the server closed it."""
    host, port = rig.root.removeprefix("http://").rsplit(":", 1)
    data = data.replace(b"host: localhost", f"host: 127.0.0.1:{port}".encode())
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        with contextlib.suppress(OSError):  # the server may close before taking a huge head whole
            sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except OSError:
            pass
    return out


@pytest.mark.parametrize("size", [1 << 20, 20 << 20])
def test_huge_header_is_431(rig: Rig, size: int) -> None:
    head = b"GET /health HTTP/1.1\r\nhost: localhost\r\nx-big: " + b"a" * size + b"\r\n\r\n"
    started = time.monotonic()
    answer = _raw(rig, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert time.monotonic() - started < 5
    assert rig.healthy()


def test_ten_thousand_headers_is_431(rig: Rig) -> None:
    head = b"GET /health HTTP/1.1\r\nhost: localhost\r\n" + b"x-h: 1\r\n" * 10_000 + b"\r\n"
    assert _raw(rig, head).startswith(b"HTTP/1.1 431 ")
    assert rig.healthy()


def test_half_sent_head_is_closed_with_408(rig: Rig, short_limits: ConnectionLimits) -> None:
    started = time.monotonic()
    answer = _raw(rig, b"GET /health HTTP/1.1\r\nhost: localhost\r\n", wait_s=10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 5


def test_silent_connection_is_closed(rig: Rig, short_limits: ConnectionLimits) -> None:
    started = time.monotonic()
    assert _raw(rig, b"", wait_s=10) == b""
    assert time.monotonic() - started < 5


def test_body_that_never_comes_is_408(rig: Rig, short_limits: ConnectionLimits) -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        b"content-length: 100\r\n\r\n{"
    )
    started = time.monotonic()
    answer = _raw(rig, head, wait_s=10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 5
    assert rig.healthy()


def test_idle_keep_alive_connection_is_closed(rig: Rig) -> None:
    started = time.monotonic()
    answer = _raw(rig, b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n", wait_s=15)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started < 10  # closed by the keep-alive timeout, not our recv timeout


# -- timeouts and shutdown --------------------------------------------------------------------


def test_hanging_api_show_honours_read_timeout(tmp_path: Path) -> None:
    with garbage_rig(tmp_path, MemoryKeyring(), read_timeout_s=1.0) as small:
        small.upstream.hang["/api/show"] = 30
        started = time.monotonic()
        response = small.chat("ollama", stream=False)
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.text
        assert elapsed < 5


def test_shutdown_with_a_stream_open_logs_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.WARNING)
    with garbage_rig(tmp_path, MemoryKeyring()) as live:
        live.upstream.script("/api/chat", [OK_LINE] + [OK_LINE] * 2, content_type=NDJSON)
        live.upstream.hang["/api/chat"] = 30
        result: dict[str, object] = {}

        def ask() -> None:
            try:
                result["response"] = live.chat("ollama", stream=True)
            except httpx.HTTPError as exc:
                result["error"] = exc

        thread = threading.Thread(target=ask)
        thread.start()
        deadline = time.monotonic() + 5
        while not live.upstream.hits.get("/api/chat") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live.upstream.hits.get("/api/chat")  # the stream is open, upstream hanging
        live.service.stop(timeout=10)
        thread.join(10)
    # uvicorn logs through its own handlers (not propagated): read stderr as well.
    text = caplog.text + capfd.readouterr().err
    assert "CancelledError" not in text and "Traceback" not in text


def test_head_ending_across_two_reads_with_a_large_body_is_not_431(rig: Rig) -> None:
    """The head limit counts the head only, even when its blank line straddles two reads."""
    host, port = rig.root.removeprefix("http://").rsplit(":", 1)
    body = b'{"x":"' + b"a" * 200_000 + b'"}'
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.2)
        sock.sendall(b"\n" + body)
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
