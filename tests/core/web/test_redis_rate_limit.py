"""The shared bucket on a real Redis: two limiters (two API processes) spend one bucket, and a
Redis that does not answer leaves each process its own bucket instead of failing requests."""

from __future__ import annotations

import uuid

from core.web.redis_rate_limit import RedisRateLimiter
from core.web.threaded import free_port


def test_two_processes_share_one_bucket(redis_url: str) -> None:
    first = RedisRateLimiter(redis_url, per_minute=1, burst=3)
    second = RedisRateLimiter(redis_url, per_minute=1, burst=3)
    tenant = uuid.uuid4()
    decisions = [first.take(tenant), second.take(tenant), first.take(tenant)]
    assert [d.allowed for d in decisions if d is not None] == [True, True, True]
    assert [d.remaining for d in decisions if d is not None] == [2, 1, 0]
    refused = second.take(tenant)
    assert refused is not None
    assert not refused.allowed
    assert 55 <= refused.retry_after_s <= 60  # one token a minute
    other = first.take(uuid.uuid4())
    assert other is not None
    assert other.allowed
    first.close()
    second.close()


def test_zero_disables_it(redis_url: str) -> None:
    assert RedisRateLimiter(redis_url, per_minute=0).take("t") is None


def test_without_redis_each_process_limits_on_its_own() -> None:
    down = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", per_minute=1, burst=2)
    decisions = [down.take("t") for _ in range(3)]
    assert [d.allowed for d in decisions if d is not None] == [True, True, False]
