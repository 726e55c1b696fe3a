"""Benchmarks. Run them from the checkout's root as modules, so `bench` and the test helpers
(`tests.support`) import as the packages they are:

    .venv/bin/python -m bench.run_all [--quick]
    .venv/bin/python -m bench.bench_classify
    .venv/bin/python -m bench.bench_sessions

What they compare against (LiteLLM, claude-code-router, the `bench` extra) is installed when
a run starts (bench/peers_install.py), never on import.
"""
