"""When to retry a failed request and how long to wait first (no I/O).

What is retried: a request that never reached the server (connection refused, connect
timeout) and a 429 are retried for every call, since the server did nothing; a 5xx, a dropped
connection or a read timeout only for idempotent calls (GET, DELETE, and POSTs that carry an
Idempotency-Key), since the server may have acted on the first attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from agentmill.errors import AgentmillAPIError, RateLimitError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's `Retry-After` is honoured."""

    max_retries: int = 2
    """Retries after the first attempt (0: none)."""
    initial_delay_s: float = 0.5
    """Wait before the first retry; doubled for each next one."""
    max_delay_s: float = 8.0
    """Longest computed wait."""
    max_retry_after_s: float = 60.0
    """Longest `Retry-After` honoured; a longer one is raised to the caller instead."""
    jitter: float = 0.25
    """Fraction of the computed wait taken off at random, so clients spread out."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number `attempt` (0-based), or None to give up."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after_s else None
        base = min(self.max_delay_s, self.initial_delay_s * 2.0**attempt)
        # Jitter is for spreading load, not security.
        return base * (1 - self.jitter * random.random())  # noqa: S311

    def after_failure(self, attempt: int, error: Exception, idempotent: bool) -> float | None:
        """Seconds to wait before retrying a call that failed with `error`, or None to raise."""
        if not retryable(error, idempotent):
            return None
        retry_after = error.retry_after if isinstance(error, AgentmillAPIError) else None
        return self.delay(attempt, retry_after)


def retryable(error: Exception, idempotent: bool) -> bool:
    """Whether a call that failed with `error` may be sent again."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | RateLimitError):
        return True  # the server did nothing
    if isinstance(error, httpx.TransportError):
        return idempotent
    if isinstance(error, AgentmillAPIError):
        return idempotent and error.status >= 500
    return False
