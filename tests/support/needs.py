"""What the running test may start, so the markers stay true.

The fast suite (`pytest -m "not real_model and not e2e"`) must run without llama-server and
without the npm/PyPI agent clients. A test that starts one has to carry the marker that
says so: `real_model` for llama-server (directly or through the Ollama test engine's
runners), `e2e` for a real client. tests/conftest.py sets `allowed` from each test's markers
before its fixtures run; outside pytest (the benchmarks) everything is allowed.
"""

from __future__ import annotations

allowed: dict[str, bool] = {"real_model": True, "e2e": True}


def require(marker: str, what: str) -> None:
    if not allowed.get(marker, True):
        raise RuntimeError(
            f"this test starts {what}, but is not marked `{marker}`: mark it (pytestmark or "
            f"@pytest.mark.{marker}), or use what the fast suite has (the engine in canned mode, "
            "an injected transport)"
        )
