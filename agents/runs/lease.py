"""One attempt's hold on its run: renewed while the attempt waits, with cancels heard.

The lease is renewed about every second (`beat_s`) while the attempt waits on a model call, a
tool or a backoff pause. A renewal that fails because the database connection dropped is
tolerated: the lease is surely held until `held_until`, the time the last successful renewal
was sent plus the lease (the database computed its expiry later than that). A tool must not
outlive that: another worker may claim the run once the lease lapses and start the same call,
so a waiting tool is cancelled, and awaited, while a safety margin remains (`wait(fenced=True)`).

Every wait ends with its coroutine cancelled and ended, whichever way the wait is left.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agents.errors import LeaseLost, RunCancelled
from agents.runs import store as run_store
from agents.runs.portal import Portal
from core.db import is_transient_db_error, transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

DELTA_FLUSH_S = 0.1
"""How often a streaming model call's text is flushed to the events."""
CANCEL_GRACE_S = 10.0
"""How long a wait gives a cancelled coroutine to end before it is abandoned (logged): a
coroutine that swallows its cancellation is a bug in it."""


class RunLease:
    """The lease of one run attempt; used by that attempt's thread only."""

    def __init__(
        self,
        engine: Engine,
        portal: Portal,
        run_id: uuid.UUID,
        owner: str,
        lease_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._portal = portal
        self.run_id = run_id
        self.owner = owner
        self.lease_s = lease_s
        self.beat_s = min(1.0, lease_s / 3)
        # Room for a renewal that hangs and for the tool to wind down once cancelled.
        self.margin_s = max(2 * self.beat_s, lease_s / 4)
        self._clock = clock
        self.held_until = clock() + lease_s  # the claim committed just before: a safe start
        self._next_beat = clock() + self.beat_s
        self.cancel_seen = False

    # -- renewing --------------------------------------------------------------------------

    def renew(self, also: Callable[[Session], Any] | None = None) -> bool:
        """Extend the lease now (with `also` in the same transaction); returns whether a cancel
        was requested. LeaseLost when another worker holds the run."""
        sent = self._clock()
        with transaction(self._engine) as session:
            cancel = run_store.heartbeat(session, self.run_id, self.owner, self.lease_s)
            if also is not None:
                also(session)
        self.held_until = sent + self.lease_s
        self.cancel_seen = self.cancel_seen or cancel
        return cancel

    def beat(self) -> None:
        """Renew if one is due; a dropped connection is logged and tried again next beat."""
        if self._clock() < self._next_beat:
            return
        self._next_beat = self._clock() + self.beat_s
        try:
            self.renew()
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise
            left = self.held_until - self._clock()
            log.warning(
                "run %s: lease not renewed, the database connection failed (%s); held for "
                "%.1f s more",
                self.run_id,
                type(exc).__name__,
                left,
            )

    def surely_held(self) -> bool:
        """Whether no other worker can have claimed the run, with the margin to spare."""
        return self._clock() < self.held_until - self.margin_s

    # -- waiting ---------------------------------------------------------------------------

    def wait(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        cancellable: bool = False,
        fenced: bool = False,
        tick: Callable[[], None] | None = None,
    ) -> T:
        """Run the coroutine on the portal and wait for it, renewing the lease. `cancellable`:
        a cancel request aborts it (RunCancelled). `fenced`: it is stopped (LeaseLost) before
        the lease could lapse while renewals fail. On every way out the coroutine is cancelled
        and awaited."""
        call = self._portal.start(coro)
        interval = DELTA_FLUSH_S if tick else self.beat_s
        try:
            while not call.wait_ended(interval):
                if tick is not None:
                    tick()
                self.beat()
                if fenced and not self.surely_held():
                    log.warning(
                        "run %s: the lease could lapse soon and was not renewed; stopping the "
                        "tool before another worker may start it",
                        self.run_id,
                    )
                    raise LeaseLost(str(self.run_id))
                if cancellable and self.cancel_seen:
                    raise RunCancelled
            return call.result()
        finally:
            call.cancel()
            if not call.wait_ended(CANCEL_GRACE_S):
                log.error(
                    "run %s: a cancelled coroutine did not end within %.0f s; abandoned",
                    self.run_id,
                    CANCEL_GRACE_S,
                )

    def pause(self, seconds: float) -> None:
        """Sleep (a backoff) while renewing the lease; RunCancelled when a cancel is heard."""
        until = self._clock() + seconds
        while True:
            if self.cancel_seen:
                raise RunCancelled
            left = until - self._clock()
            if left <= 0:
                return
            time.sleep(min(left, self.beat_s))
            self.beat()
