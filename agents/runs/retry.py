"""Waiting out outages: which failures heal by themselves, and the backoff between retries.

Two kinds of failure are transient for a run: a model server that cannot be reached, times out,
answers 5xx or rate limits (`ModelUnavailable`, raised by the model client), and a database
connection that drops (a restart, a failover: `core.db.is_transient_db_error`). The operation
is retried with exponential backoff and jitter for at most its kind's budget
(`AGENTMILL_MODEL_RETRY_S`, `AGENTMILL_DB_RETRY_S`); past it, `OutageOutlasted` tells the
executor to stop this attempt without failing the run. Everything else is not retried here.

The policy is pure (`Backoff.delay`); `retry_outages` takes the pause as a function, so the
executor's pause can renew the run's lease and hear a cancel while it waits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from agents.errors import AgentError
from core.db import is_transient_db_error
from inference.client.model_client import ModelUnavailable

T = TypeVar("T")
OutageKind = Literal["model", "database"]

DATABASE_UNAVAILABLE = "the database connection was lost"
"""The fixed message of a database outage (the driver's text names hosts, ports and roles)."""


@dataclass(frozen=True)
class Outage:
    """A transient failure, as the run's events and logs name it."""

    kind: OutageKind
    """What is down."""
    reason: str
    """A short code: unreachable, timeout, server_error, rate_limited, connection_lost."""
    message: str
    """A fixed sentence, safe to show a tenant."""


def outage_of(exc: BaseException) -> Outage | None:
    """The outage an exception reports, or None when it is not transient."""
    if isinstance(exc, ModelUnavailable):
        return Outage("model", exc.reason, exc.message)
    if is_transient_db_error(exc):
        return Outage("database", "connection_lost", DATABASE_UNAVAILABLE)
    return None


class OutageOutlasted(AgentError):
    """An outage lasted longer than its retry budget: stop the attempt, leave the run be."""

    def __init__(self, outage: Outage, waited_s: float) -> None:
        super().__init__(f"{outage.message} for {waited_s:.0f} s")
        self.outage = outage
        self.waited_s = waited_s


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, within a total budget."""

    budget_s: float
    """Longest time to keep retrying one streak of failures."""
    first_s: float = 0.5
    """Pause after the first failure (before jitter)."""
    max_s: float = 8.0
    """Longest single pause (before jitter)."""

    def delay(self, failures: int, jitter: float) -> float:
        """The pause after `failures` consecutive failures; `jitter` in [0, 1) spreads the
        retries of many runs so that a recovering server is not hit by all at once."""
        base = min(self.max_s, self.first_s * 2.0 ** max(0, failures - 1))
        return base * (0.5 + jitter / 2)


Pause = Callable[[float, Outage, int], None]
"""Waits `seconds` before the retry after the `failures`-th failure of an outage."""


def retry_outages(
    operation: Callable[[], T],
    budgets: Mapping[OutageKind, Backoff],
    pause: Pause,
    *,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Run `operation`, retrying it while it fails with an outage of a kind in `budgets`;
    OutageOutlasted (chained to the last failure) once a streak outlasts its budget."""
    failures = 0
    first_failure = 0.0
    while True:
        try:
            return operation()
        except Exception as exc:
            outage = outage_of(exc)
            if outage is None or outage.kind not in budgets:
                raise
            now = clock()
            failures += 1
            if failures == 1:
                first_failure = now
            backoff = budgets[outage.kind]
            left = first_failure + backoff.budget_s - now
            if left <= 0:
                raise OutageOutlasted(outage, now - first_failure) from exc
            pause(min(backoff.delay(failures, jitter()), left), outage, failures)
