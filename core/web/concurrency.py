"""Caps on long-lived requests (event streams, waits): at most so many open per key (tenant)
and so many in all, in this process. A request over either cap is refused with
`TooManyRequests` before it does any work; an admitted one holds a `Slot` until it ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from types import TracebackType

from core.errors import TooManyRequests

RETRY_AFTER_S = 10
"""Retry-After of a refusal: streams last seconds to minutes, so an immediate retry is futile
(and the refusal is itself held for part of it: core.web.refusal_hold)."""


class Slot:
    """One admitted request's place; `release` (or leaving the `with` block) gives it back,
    once however often it is called."""

    def __init__(self, limit: ConcurrencyLimit, key: Hashable) -> None:
        self._limit = limit
        self._key = key
        self._held = True

    def release(self) -> None:
        """Give the place back (idempotent)."""
        if self._held:
            self._held = False
            self._limit._release(self._key)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class ConcurrencyLimit:
    """Counts open requests per key and in all; `acquire` refuses past `per_key` or `total`."""

    def __init__(
        self,
        *,
        per_key: int,
        total: int,
        what: str = "open streams",
        on_change: Callable[[int], object] | None = None,
    ) -> None:
        """`on_change` is told +1 for each admission and -1 for each release (a gauge's
        `inc`: metrics of the open requests)."""
        if per_key < 1 or total < 1:
            raise ValueError("per_key and total must be at least 1")
        self.per_key = per_key
        self.total = total
        self._what = what
        self._open: dict[Hashable, int] = {}
        self._count = 0
        self._lock = threading.Lock()  # admitted on the event loop, sync routes may use it too
        self._on_change = on_change

    @property
    def open(self) -> int:
        """Requests holding a slot now."""
        return self._count

    def open_for(self, key: Hashable) -> int:
        """Requests of `key` holding a slot now."""
        return self._open.get(key, 0)

    def acquire(self, key: Hashable) -> Slot:
        """A slot for one more request of `key`, or `TooManyRequests` naming the cap it hit."""
        with self._lock:
            held = self._open.get(key, 0)
            if held >= self.per_key:
                raise TooManyRequests(
                    f"too many {self._what} for this tenant ({self.per_key} at most); close "
                    f"one or retry after {RETRY_AFTER_S} s",
                    retry_after_s=RETRY_AFTER_S,
                )
            if self._count >= self.total:
                raise TooManyRequests(
                    f"this server has {self.total} {self._what}, its most; retry after "
                    f"{RETRY_AFTER_S} s",
                    retry_after_s=RETRY_AFTER_S,
                )
            self._open[key] = held + 1
            self._count += 1
        if self._on_change is not None:
            self._on_change(1)
        return Slot(self, key)

    def _release(self, key: Hashable) -> None:
        with self._lock:
            held = self._open.get(key, 0) - 1
            if held <= 0:
                self._open.pop(key, None)
            else:
                self._open[key] = held
            self._count = max(0, self._count - 1)
        if self._on_change is not None:
            self._on_change(-1)
