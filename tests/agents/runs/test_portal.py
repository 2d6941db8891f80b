"""The portal's calls: results and errors cross threads, a cancel reaches the coroutine, and
`wait_ended` returns only once the coroutine has really finished."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

from agents.runs.portal import Portal


def test_a_result_and_an_error_come_back(portal: Portal) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        raise TimeoutError("the coroutine's own timeout")

    assert portal.call(answer(), timeout=5) == 42
    call = portal.start(fail())
    assert call.wait_ended(5)
    with pytest.raises(TimeoutError, match="own timeout"):
        call.result(0)


def test_wait_ended_waits_for_the_cancelled_coroutine_to_clean_up(portal: Portal) -> None:
    started = threading.Event()
    cleaned = threading.Event()

    async def slow_to_stop() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # cleanup that takes a while
            cleaned.set()
            raise

    call = portal.start(slow_to_stop())
    assert started.wait(5)
    begun = time.monotonic()
    call.cancel()
    assert call.wait_ended(5)
    assert cleaned.is_set()  # not before the coroutine had finished its cleanup
    assert time.monotonic() - begun >= 0.25
    with pytest.raises(concurrent.futures.CancelledError):
        call.result(0)


def test_a_call_cancelled_before_it_ran_never_runs(portal: Portal) -> None:
    blocking = threading.Event()
    release = threading.Event()
    ran = threading.Event()

    async def block_the_loop() -> None:
        blocking.set()
        release.wait(5)  # blocks the loop thread on purpose

    async def effect() -> None:
        ran.set()

    blocker = portal.start(block_the_loop())
    assert blocking.wait(5)  # the loop is busy: the next call cannot be scheduled yet
    call = portal.start(effect())
    call.cancel()
    release.set()
    assert blocker.wait_ended(5)
    assert call.wait_ended(5)
    assert not ran.is_set()
    with pytest.raises(concurrent.futures.CancelledError):
        call.result(0)


def test_cancel_after_the_end_changes_nothing(portal: Portal) -> None:
    async def done() -> str:
        return "ok"

    call = portal.start(done())
    assert call.wait_ended(5)
    call.cancel()
    assert call.result(0) == "ok"
    assert call.ended()
