"""The two small pieces everything leans on: `Signal` (router_core/signals.py), the typed
event every core event is, and `InFlight` (router_core/inflight.py), the requests running
now that the privacy switch can stop from another thread."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest

from router_core.inflight import InFlight
from router_core.signals import Signal


class Listener:
    def __init__(self) -> None:
        self.got: list[int] = []

    def on(self, value: int) -> None:
        self.got.append(value)


# -- Signal ------------------------------------------------------------------------------


def test_listeners_get_each_value_in_the_order_they_connected() -> None:
    signal: Signal[int] = Signal()
    order: list[str] = []
    first, second = Listener(), Listener()

    def plain(value: int) -> None:
        order.append(f"plain {value}")

    signal.connect(first.on)
    signal.connect(plain)
    signal.connect(second.on)
    signal.emit(1)
    signal.emit(2)
    assert first.got == [1, 2] and second.got == [1, 2] and order == ["plain 1", "plain 2"]
    assert len(signal) == 3 and signal


def test_a_listener_is_held_weakly_and_a_dead_one_is_dropped() -> None:
    signal: Signal[int] = Signal()
    kept, gone = Listener(), Listener()
    signal.connect(kept.on)
    signal.connect(gone.on)
    del gone
    gc.collect()
    assert len(signal) == 1
    signal.emit(5)
    assert kept.got == [5]
    del kept
    gc.collect()
    assert not signal and len(signal) == 0
    signal.emit(6)  # nobody left: nothing happens


def test_disconnect_removes_only_that_listener() -> None:
    signal: Signal[int] = Signal()
    a, b = Listener(), Listener()
    signal.connect(a.on)
    signal.connect(b.on)
    signal.disconnect(a.on)
    signal.emit(3)
    assert a.got == [] and b.got == [3]


def test_a_failing_listener_is_logged_and_never_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    signal: Signal[int] = Signal()
    after = Listener()

    def broken(value: int) -> None:
        raise ValueError("listener bug")

    signal.connect(broken)
    signal.connect(after.on)
    with caplog.at_level(logging.ERROR, logger="router_core.signals"):
        signal.emit(7)  # does not raise into the emitter (a request's path)
    assert after.got == [7]
    assert "signal listener failed" in caplog.text and "listener bug" in caplog.text


def test_connecting_while_another_thread_emits_loses_nothing() -> None:
    signal: Signal[int] = Signal()
    listeners = [Listener() for _ in range(50)]
    stop = threading.Event()

    def emit_forever() -> None:
        while not stop.is_set():
            signal.emit(1)

    emitter = threading.Thread(target=emit_forever)
    emitter.start()
    try:
        for listener in listeners:
            signal.connect(listener.on)
    finally:
        stop.set()
        emitter.join()
    signal.emit(2)
    assert len(signal) == 50 and all(listener.got[-1] == 2 for listener in listeners)


# -- InFlight ----------------------------------------------------------------------------


async def test_tracking_counts_requests_by_route_while_they_run() -> None:
    flight = InFlight()
    assert flight.count() == 0
    with flight.track("local") as local, flight.track("cloud") as cloud:
        assert flight.count() == 2 and flight.count("local") == 1 and flight.count("cloud") == 1
        cloud.route = "local"  # the request learned which candidate answers
        assert flight.count("local") == 2 and flight.count("cloud") == 0
        assert local.stopped is None
    assert flight.count() == 0


async def test_stop_route_cancels_only_that_routes_requests_and_says_why() -> None:
    flight = InFlight()
    reached: list[str] = []

    async def request(route: str) -> str | None:
        with flight.track(route) as item:
            await asyncio.sleep(10)
            reached.append(route)  # only a request nobody stopped gets here
        return item.stopped

    cloud = asyncio.create_task(request("cloud"))
    local = asyncio.create_task(request("local"))
    await asyncio.sleep(0.01)
    assert flight.stop_route("cloud", "privacy mode was switched on") == 1
    assert await asyncio.wait_for(cloud, 2) == "privacy mode was switched on"
    assert not local.done() and flight.count() == 1
    # Stopping again finds nothing new to stop.
    assert flight.stop_route("cloud", "again") == 0
    local.cancel()
    with pytest.raises(asyncio.CancelledError):
        await local
    assert reached == [] and flight.count() == 0


async def test_stop_route_from_another_thread_goes_through_the_requests_loop() -> None:
    flight = InFlight()
    started = asyncio.Event()

    async def request() -> str | None:
        with flight.track("cloud") as item:
            started.set()
            await asyncio.sleep(10)
        return item.stopped

    task = asyncio.create_task(request())
    await started.wait()
    stopped: list[int] = []
    switch = threading.Thread(target=lambda: stopped.append(flight.stop_route("cloud", "from the tray")))
    switch.start()
    await asyncio.to_thread(switch.join)
    assert stopped == [1]
    assert await asyncio.wait_for(task, 2) == "from the tray"
