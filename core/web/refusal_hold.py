"""Holding a 429 before it is sent, so that a client which retries at once, ignoring
`Retry-After`, waits anyway.

A refusal is cheap, but a client that reconnects the moment it is refused makes hundreds of
them a second, and each still passes the ASGI stack, the key check and the limiter: on a small
machine those refusals alone take the CPU other tenants need. Holding each refusal for a while
(an idle `asyncio.sleep`, no thread, no database connection) turns a tight retry loop into a
slow one: a client with N connections makes at most N / hold refusals a second. A well-behaved
client loses nothing: the time held is taken off the `Retry-After` it receives. Each hold is
drawn between half and all of the limit, so a crowd refused together does not come back
together (a burst of hundreds of retries at one instant is what a waiting request would queue
behind). At most
`max_held` refusals are held at once in a process; past that they are answered at once, so the
hold itself cannot pile up sockets without bound.
"""

from __future__ import annotations

import asyncio
import math
import random


class RefusalHold:
    """Delays refusals by up to `hold_s` seconds, with at most `max_held` held at once."""

    def __init__(self, hold_s: float, max_held: int, rng: random.Random | None = None) -> None:
        if hold_s < 0 or max_held < 0:
            raise ValueError("hold_s and max_held must not be negative")
        self.hold_s = hold_s
        self.max_held = max_held
        self._held = 0
        self._rng = rng or random.Random()  # noqa: S311 (spreading retries, not a secret)

    @property
    def held(self) -> int:
        """Refusals being held now."""
        return self._held

    async def hold(self, retry_after_s: int) -> int:
        """Wait before a refusal whose caller should retry after `retry_after_s` seconds; the
        `Retry-After` left to send (at least 1 when `retry_after_s` was)."""
        limit = min(self.hold_s, float(retry_after_s))
        if limit <= 0 or self._held >= self.max_held:
            return retry_after_s
        wait = self._rng.uniform(limit / 2, limit)
        self._held += 1  # one event loop per process: no lock needed
        try:
            await asyncio.sleep(wait)
        finally:
            self._held -= 1
        return max(1, math.ceil(retry_after_s - wait)) if retry_after_s > 0 else 0
