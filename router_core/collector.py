"""The garbage collector's settings for a process that serves requests.

Almost everything a request makes is freed by reference counting the moment it is done
with; the cyclic collector finds nothing to free (under the benchmark's load: 0 objects collected
in thousands of collections). What it costs is the walk: with CPython's default threshold (a
young collection after 700 more container objects than were freed) 32 requests in flight
keep that count near the line, so a young collection ran every ~16 requests and walked
every live object of all of them: 7 µs a request with the ledger off, 9.5 µs with it on,
of ~210 µs of the event loop's time (bench/profile_notes.md). Above what the requests in
flight hold together, young collections are rare: at 2,500, one per ~300 requests with the
ledger on (its queued rows count too) and per ~2,400 with it off, 1.8 and 0.2 µs a request,
for 6 % more requests/s. 10,000 was no faster, and let more cyclic garbage (an exception's
frames, which hold the request they failed on) wait to be freed.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 2_500


def raise_young_threshold() -> None:
    """Collect the young generation after YOUNG_THRESHOLD more allocations than frees (the
    older generations keep their own settings)."""
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), older, oldest)


def freeze_startup_objects() -> None:
    """Move what startup made (modules, settings, providers, the app: all of it lives as long
    as this process, which serves one router) out of the garbage collector's way, so a full
    collection walks only what requests made since. At 4,000 requests/s this took garbage
    collection from 25 to 14 µs a request with the ledger on, 16 to 7 µs with it off
    (bench/profile_notes.md). Only for `hybridge serve`; not in the tray app, which may build
    a router more than once: frozen objects are never collected, even once unreachable."""
    gc.collect()
    gc.freeze()
