"""Background threads (the ledger's writer, the request log) step aside for the event loop.

They share the process, and so its GIL and often its core, with the event loop's thread,
which serves every request. At the lowest CPU priority (nice 19, that thread only) a
background thread still gets any idle core, and the loop is not preempted for it when
both want the same core; what it does is never urgent (rows and log lines may wait for a
batch anyway).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

LOWEST = 19


def lower_this_thread() -> None:
    """Give the calling thread the lowest CPU priority, and its Python name as the name the
    OS shows (top -H, /proc: 15 bytes). Linux only, where a thread's id names it to
    setpriority (elsewhere that would renice the whole process); raising one's own nice needs
    no privilege, and a refusal changes nothing."""
    if sys.platform != "linux":
        return
    native_id = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, native_id, LOWEST)
    with contextlib.suppress(OSError):
        Path(f"/proc/self/task/{native_id}/comm").write_text(threading.current_thread().name[:15])
