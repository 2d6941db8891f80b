"""The retry policy: what is retried, and after how long."""

from __future__ import annotations

import httpx
import pytest
from agentmill.errors import APIError, ConflictError, RateLimitError
from agentmill.retry import RetryPolicy, retryable


def test_backoff_doubles_up_to_the_cap_and_stops_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=5, initial_delay_s=1.0, max_delay_s=3.0, jitter=0.0)
    assert [policy.delay(n) for n in range(6)] == [1.0, 2.0, 3.0, 3.0, 3.0, None]


def test_jitter_only_shortens_the_wait() -> None:
    policy = RetryPolicy(initial_delay_s=1.0, jitter=0.5)
    delays = [policy.delay(0) or 0.0 for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in delays)


def test_retry_after_is_honoured_unless_too_long() -> None:
    policy = RetryPolicy(max_retry_after_s=10.0)
    assert policy.delay(0, retry_after=7.0) == 7.0
    assert policy.delay(0, retry_after=11.0) is None
    limited = RateLimitError(429, "rate_limited", "slow down", retry_after=4.0)
    assert policy.after_failure(0, limited, idempotent=False) == 4.0


@pytest.mark.parametrize(
    ("error", "idempotent", "expected"),
    [
        (httpx.ConnectError("refused"), False, True),
        (httpx.ConnectTimeout("slow"), False, True),
        (RateLimitError(429, "rate_limited", "m"), False, True),
        (httpx.ReadTimeout("slow"), False, False),
        (httpx.ReadTimeout("slow"), True, True),
        (httpx.RemoteProtocolError("dropped"), True, True),
        (APIError(503, "unavailable", "m"), False, False),
        (APIError(500, "internal_error", "m"), True, True),
        (ConflictError(409, "conflict", "m"), True, False),
        (ValueError("x"), True, False),
    ],
)
def test_what_is_retryable(error: Exception, idempotent: bool, expected: bool) -> None:
    assert retryable(error, idempotent) is expected
