"""One asyncio event loop in a background thread, shared by a worker's run threads.

A worker executes each run in a thread of its pool with plain, blocking database code; model
calls and tools are coroutines. Running them all on one long-lived loop (instead of an
`asyncio.run` per call) lets them share the model client's connection pool, and gives the run
thread a `concurrent.futures.Future` it can wait on while it heartbeats, and cancel.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Portal:
    """An event loop running in a daemon thread until `close`."""

    def __init__(self, name: str = "agentmill-portal") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule the coroutine on the loop; cancelling the future cancels the task."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run the coroutine on the loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
