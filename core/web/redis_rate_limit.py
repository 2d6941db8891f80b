"""The per-tenant token bucket shared by every API process through Redis.

One Lua script refills and spends a bucket atomically on the Redis server, timed by Redis's own
clock, so N API replicas enforce one rate per tenant instead of N. When Redis does not answer,
each process falls back to its own in-process bucket (core.web.rate_limit) until it does: the
limit loosens to per process for that time, requests never fail because of the limiter.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable

import redis

from core.web.rate_limit import Decision, RateLimiter

log = logging.getLogger(__name__)

KEY_PREFIX = "agentmill:ratelimit:"
"""Bucket keys in Redis: this prefix and the limited key (a tenant id)."""
TIMEOUT_S = 0.5
"""Longest a request waits on Redis before it uses the in-process bucket."""
_WARN_EVERY_S = 60.0

# KEYS[1] the bucket; ARGV rate (tokens/s), burst. Returns {allowed, tokens left} (the tokens as
# text: Redis would truncate a Lua number to an integer).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(math.max(updated, now)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """`RateLimiter`'s bucket (`burst` tokens, `per_minute` refill), kept in Redis at `url`."""

    def __init__(self, url: str, per_minute: int, burst: int | None = None) -> None:
        self._fallback = RateLimiter(per_minute, burst)
        self.per_minute = self._fallback.per_minute
        self.burst = self._fallback.burst
        self._client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        self._take = self._client.register_script(_TAKE)
        self._warned_at: float | None = None

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.per_minute > 0

    def take(self, key: Hashable) -> Decision | None:
        """Spend one token of `key`'s shared bucket; the process's own bucket when Redis fails."""
        if not self.enabled:
            return None
        rate = self.per_minute / 60.0
        try:
            allowed, tokens_text = self._take(keys=[f"{KEY_PREFIX}{key}"], args=[rate, self.burst])
        except redis.RedisError as exc:
            now = time.monotonic()
            if self._warned_at is None or now - self._warned_at > _WARN_EVERY_S:
                self._warned_at = now
                log.warning("shared rate limit unavailable (%s); limiting per process", exc)
            return self._fallback.take(key)
        tokens = float(tokens_text)
        if int(allowed) == 1:
            return Decision(True, self.burst, math.floor(tokens), 0)
        return Decision(False, self.burst, 0, max(1, math.ceil((1.0 - tokens) / rate)))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
