"""The periodic thread: calls on time, survives a failing call, stops."""

from __future__ import annotations

import threading

import pytest

from core.periodic import Periodic


def test_calls_repeatedly_and_survives_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    three = threading.Event()

    def action() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database went away")
        if len(calls) >= 3:
            three.set()

    task = Periodic("test-periodic", 0.01, action)
    task.start()
    assert three.wait(5)
    task.stop()
    stopped_at = len(calls)
    assert not task._thread.is_alive()
    assert len(calls) == stopped_at  # nothing after stop
    assert "test-periodic failed" in caplog.text
    assert "database went away" in caplog.text


def test_first_call_comes_after_one_interval() -> None:
    called = threading.Event()
    task = Periodic("slow", 60.0, called.set)
    task.start()
    assert not called.wait(0.2)
    task.stop()
    assert not called.is_set()
