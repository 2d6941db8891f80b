"""One asyncio event loop in a background thread, shared by a worker's run threads.

A worker executes each run in a thread of its pool with plain, blocking database code; model
calls and tools are coroutines. Running them all on one long-lived loop (instead of an
`asyncio.run` per call) lets them share the model client's connection pool, and gives the run
thread a handle (`Call`) it can wait on while it heartbeats, cancel, and wait on again until the
coroutine has really ended: a cancelled future says nothing about whether the coroutine is
still cleaning up, or still running because it has not been scheduled yet.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Call(Generic[T]):
    """A coroutine running on the portal's loop, seen from another thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> None:
        self._loop = loop
        self._future: Future[T] = Future()
        self._ended = threading.Event()
        self._task: asyncio.Task[T] | None = None
        self._cancelled = False  # read and written on the loop thread only
        loop.call_soon_threadsafe(self._start, coro)

    def _start(self, coro: Coroutine[Any, Any, T]) -> None:
        if self._cancelled:  # cancelled before it was scheduled: it never runs at all
            coro.close()
            self._future.cancel()
            self._ended.set()
            return
        self._task = self._loop.create_task(coro)
        self._task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            self._future.cancel()
        elif (error := task.exception()) is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(task.result())
        self._ended.set()

    def _cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    def result(self, timeout: float | None = None) -> T:
        """Its result (or exception); `concurrent.futures.TimeoutError` if not done in time."""
        return self._future.result(timeout)

    def cancel(self) -> None:
        """Ask the coroutine to stop (a CancelledError inside it); a no-op once it has ended."""
        if not self._ended.is_set():
            self._loop.call_soon_threadsafe(self._cancel)

    def wait_ended(self, timeout: float | None = None) -> bool:
        """Block until the coroutine has returned, raised or finished cancelling; False when
        `timeout` passed first. A sync tool's thread (`asyncio.to_thread`) is not part of it:
        Python cannot stop a thread, and its eventual result is dropped."""
        return self._ended.wait(timeout)

    def ended(self) -> bool:
        """Whether the coroutine has ended."""
        return self._ended.is_set()


class Portal:
    """An event loop running in a daemon thread until `close`."""

    def __init__(self, name: str = "agentmill-portal") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, coro: Coroutine[Any, Any, T]) -> Call[T]:
        """Run the coroutine on the loop; the Call can be waited on and cancelled."""
        return Call(self._loop, coro)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run the coroutine on the loop and wait for its result."""
        return self.start(coro).result(timeout)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
