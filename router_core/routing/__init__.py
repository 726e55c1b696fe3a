"""Routing: classify a request and decide its plan (no I/O, no clocks; classify writes its
findings onto the request), plus the small
stateful memories the runtime feeds into each decision as a RoutingState (cooldowns.py:
failing upstreams, writers.py: who wrote each session's code)."""
