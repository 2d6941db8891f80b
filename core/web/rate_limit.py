"""Per-key request rate limits: a token bucket per key, in process memory, and the ASGI
middleware that reports the caller's allowance in `X-RateLimit-*` headers.

These buckets live in one process: with N API replicas behind a balancer, each keeps its own,
so a tenant may make up to N times the configured rate in all, unless the replicas share
buckets in Redis (core.web.redis_rate_limit, chosen when Redis is configured).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MonotonicClock = Callable[[], float]
"""Seconds on a monotonic scale (`time.monotonic`; `ManualClock` in tests)."""

STATE_KEY = "rate_limit"
"""Where a request's `Decision` is kept in the ASGI scope's `state` (`request.state`)."""


class ManualClock:
    """A clock that moves only when told: exact bucket arithmetic in tests, no sleeping."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current reading."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@dataclass(frozen=True)
class Decision:
    """The outcome of one request's `take`."""

    allowed: bool
    """Whether the request may proceed."""
    limit: int
    """The bucket's size: requests that can be made back to back from a full bucket."""
    remaining: int
    """Whole requests left in the bucket after this one."""
    retry_after_s: int
    """When refused: whole seconds until a token is back (at least 1); 0 when allowed."""


class Limiter(Protocol):
    """What the API asks of a per-tenant limiter (in process, or shared through Redis)."""

    per_minute: int
    """Requests per minute per key; 0 when disabled."""

    def take(self, key: Hashable) -> Decision | None:
        """Spend one token of `key`'s bucket if it has one; None when the limiter is off."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: `burst` tokens at most, refilled at `per_minute` per minute;
    each request takes one. `per_minute` 0 disables the limiter. Past `max_keys` buckets the
    least recently used are forgotten (a forgotten key starts full again), so keys may come
    from an open set such as client addresses."""

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        *,
        clock: MonotonicClock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must be 0 (disabled) or more")
        self.per_minute = per_minute
        self.burst = burst if burst is not None else per_minute
        if self.enabled and self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._lock = threading.Lock()  # sync dependencies run in a thread pool

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.per_minute > 0

    def take(self, key: Hashable) -> Decision | None:
        """Spend one token of `key`'s bucket if it has one; None when the limiter is off."""
        if not self.enabled:
            return None
        with self._lock:
            bucket = self._refilled(key)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Decision(True, self.burst, math.floor(bucket.tokens), 0)
            return Decision(False, self.burst, 0, self._wait_s(bucket))

    def retry_after(self, key: Hashable) -> int:
        """Seconds until `key` has a token again (0: it has one now), spending nothing."""
        if not self.enabled:
            return 0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0
            bucket = self._refilled(key)
            return 0 if bucket.tokens >= 1.0 else self._wait_s(bucket)

    @property
    def keys_kept(self) -> int:
        """How many buckets are kept."""
        return len(self._buckets)

    def _refilled(self, key: Hashable) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        elapsed = max(0.0, now - bucket.updated)  # a clock that went back adds nothing
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self._rate)
        bucket.updated = max(bucket.updated, now)
        return bucket

    def _wait_s(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))


class RateLimitHeaders:
    """ASGI middleware: adds `X-RateLimit-Limit` and `X-RateLimit-Remaining` to the response
    of a request whose handling recorded a `Decision` in `request.state` (under
    `STATE_KEY`); other responses pass unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, object] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            decision = state.get(STATE_KEY)
            if message["type"] == "http.response.start" and isinstance(decision, Decision):
                headers = list(message.get("headers", []))
                headers.append((b"x-ratelimit-limit", str(decision.limit).encode()))
                headers.append((b"x-ratelimit-remaining", str(decision.remaining).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
