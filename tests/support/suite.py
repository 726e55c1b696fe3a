"""Which suite runs: the whole one (`bash scripts/test.sh`, plain `pytest`) or the fast one
(`pytest -m "not real_model and not e2e"`: no llama-server, no real clients, no subprocess
runs of our own commands; under two minutes).

The generated-case suites (fuzzers, property tests) run a tenth of their cases in the fast
suite: the same properties on a smaller sample, every run; the whole suite runs them all.
tests/conftest.py sets `fast` from the marker expression before the test modules load.
"""

from __future__ import annotations

fast = False


def examples(full: int) -> int:
    """How many generated cases a suite of `full` runs now."""
    return max(full // 10, 10) if fast else full
