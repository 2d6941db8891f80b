"""Admission for an engine: a fixed number of slots and a bounded queue in front of them."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from inference.errors import Overloaded


class SlotGate:
    """At most `slots` requests run; at most `max_waiting` more wait, in arrival order."""

    def __init__(self, slots: int, max_waiting: int) -> None:
        self.slots, self.max_waiting = slots, max_waiting
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting for one; raise `Overloaded` when the queue is full."""
        with self._lock:
            if self.running < self.slots and not self._waiters:
                self.running += 1
                return
            if len(self._waiters) >= self.max_waiting:
                raise Overloaded(len(self._waiters))
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            await waiter  # release() hands its slot over: `running` is already counted
        except BaseException:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._release_locked()  # granted just as we were cancelled
            raise

    def release(self) -> None:
        """Give a slot back, to the first waiter if there is one."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.get_loop().call_soon_threadsafe(self._grant, waiter)
                return
        self.running -= 1

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.release()  # its owner left between hand-over and wake-up
        else:
            waiter.set_result(None)
