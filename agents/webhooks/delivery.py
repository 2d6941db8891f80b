"""Sending the outbox: each worker process runs a `Deliverer`, a thread with its own event
loop that claims due deliveries and POSTs them, signed, to their endpoints.

- **Claiming** takes due pending rows with `FOR UPDATE SKIP LOCKED` (any number of workers
  share the work, none takes a row another holds) and moves each one's `next_attempt_at` past
  the attempt's timeout before committing: that is its lease. A worker that dies mid-attempt
  leaves the row due again once the lease passes, and another worker sends it again, with the
  same `webhook-id` (at-least-once; receivers dedupe by the id).
- **Fairness.** A process sends at most one delivery per endpoint at a time and at most
  AGENTMILL_WEBHOOK_CONCURRENCY in all, each bounded by AGENTMILL_WEBHOOK_TIMEOUT_S, and the
  loop never waits for a slow one before claiming more: a dead endpoint holds one slot, never
  the others' deliveries, and never a run (runs only write the outbox row).
- **Outcome.** A 2xx answer delivers it. Anything else (another status, a timeout, a refused
  destination, a connection error) is an attempt that failed: the next one is due after an
  exponential backoff with jitter (5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, then every 4 h)
  until the delivery is AGENTMILL_WEBHOOK_MAX_AGE_S old (24 h), when it is marked failed.
  Redirects are not followed. Every attempt is recorded with its status code and latency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from agents.webhooks.signing import headers
from agents.webhooks.tables import AttemptRow, DeliveryRow, SigningKeyRow, WebhookRow
from core.config import Settings
from core.db import transaction
from core.egress import Allowed, DestinationRefused, GuardedTransport
from core.secrets import SecretBox

log = logging.getLogger(__name__)

BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14_400.0)
"""The wait before attempt n + 1 after n failed ones (the last repeats), before jitter."""
LEASE_MARGIN_S = 5.0
"""A claimed delivery is due again this long after its attempt's timeout."""
MAX_ERROR_CHARS = 500


def backoff_s(failed: int, rng: random.Random) -> float:
    """The wait after `failed` failed attempts: the schedule, jittered by +-20%."""
    base = BACKOFF_S[min(failed, len(BACKOFF_S)) - 1]
    return base * rng.uniform(0.8, 1.2)


@dataclass(frozen=True)
class Claimed:
    """A delivery this process is sending now."""

    delivery_id: uuid.UUID
    target: uuid.UUID
    """The endpoint's id, or for a per-request webhook one derived from its URL: a process
    sends one delivery per target at a time."""
    url: str
    secret: str
    event_id: str
    body: str
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """How one attempt went."""

    status_code: int | None
    latency_ms: float
    error: str | None

    @property
    def delivered(self) -> bool:
        """Whether the endpoint took it (2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class Deliverer:
    """The outbox sender of one worker process."""

    def __init__(self, engine: Engine, settings: Settings, rng: random.Random | None = None):
        self.engine = engine
        self.settings = settings
        self.allowed = Allowed(settings.webhook_allowed_hosts, "AGENTMILL_WEBHOOK_ALLOWED_HOSTS")
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._box: SecretBox | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Start sending in a daemon thread."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="agentmill-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop claiming; wait (up to `timeout_s`) for the attempts under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    async def _main(self) -> None:
        sending: dict[uuid.UUID, asyncio.Task[None]] = {}  # by endpoint
        async with httpx2.AsyncClient(
            transport=GuardedTransport(self.allowed),
            timeout=self.settings.webhook_timeout_s,
            follow_redirects=False,
        ) as client:
            while not self._stop.is_set():
                free = self.settings.webhook_concurrency - len(sending)
                if free > 0:
                    try:
                        claimed = await asyncio.to_thread(self.claim, free, set(sending))
                    except Exception:  # the database is down: try again next round
                        log.warning("webhooks: claiming deliveries failed", exc_info=True)
                        claimed = []
                    for item in claimed:
                        task = asyncio.create_task(self._deliver(client, item))
                        sending[item.target] = task
                        task.add_done_callback(_forget(sending, item.target))
                await asyncio.sleep(self.settings.webhook_poll_s)
            if sending:
                await asyncio.wait(list(sending.values()), timeout=self.settings.webhook_timeout_s)

    async def _deliver(self, client: httpx2.AsyncClient, item: Claimed) -> None:
        outcome = await self.send(client, item)
        try:
            await asyncio.to_thread(self.record, item, outcome)
        except Exception:  # not recorded: the lease passes and it is sent again
            log.warning("webhooks: delivery %s not recorded", item.delivery_id, exc_info=True)

    # -- the steps (each usable alone, for tests) ------------------------------------------

    @property
    def box(self) -> SecretBox:
        """The deployment's secret box, made on first use."""
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box

    def claim(self, limit: int, busy: set[uuid.UUID] | None = None) -> list[Claimed]:
        """Take up to `limit` due deliveries, at most one per target and none of the `busy`
        targets', leased for one attempt (a per-request delivery is signed with its tenant's
        request signing key)."""
        busy = busy or set()
        lease = timedelta(seconds=self.settings.webhook_timeout_s + LEASE_MARGIN_S)
        with transaction(self.engine) as session:
            rows = session.execute(
                select(
                    DeliveryRow,
                    func.coalesce(WebhookRow.url, DeliveryRow.url),
                    func.coalesce(WebhookRow.secret, SigningKeyRow.secret),
                )
                .outerjoin(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
                .outerjoin(SigningKeyRow, SigningKeyRow.tenant_id == DeliveryRow.tenant_id)
                .where(
                    DeliveryRow.status == "pending",
                    DeliveryRow.next_attempt_at <= func.now(),
                    or_(DeliveryRow.webhook_id.is_(None), WebhookRow.enabled.is_(True)),
                )
                .order_by(DeliveryRow.next_attempt_at)
                .limit(limit * 4)
                .with_for_update(of=DeliveryRow, skip_locked=True)
            ).all()
            claimed: list[Claimed] = []
            for row, url, secret in rows:
                target = row.webhook_id or uuid.uuid5(uuid.NAMESPACE_URL, url)
                if len(claimed) >= limit or target in busy:
                    continue
                if secret is None:  # a per-request delivery of a tenant without a signing key
                    row.status, row.last_error = "failed", "no request signing key to sign with"
                    continue
                busy.add(target)
                row.attempts += 1
                row.next_attempt_at = func.now() + lease
                claimed.append(
                    Claimed(
                        delivery_id=row.id,
                        target=target,
                        url=url,
                        secret=str(self.box.open(secret)),
                        event_id=row.event_id,
                        body=json.dumps(row.payload, separators=(",", ":")),
                        attempt=row.attempts,
                    )
                )
        return claimed

    async def send(self, client: httpx2.AsyncClient, item: Claimed) -> Outcome:
        """POST one delivery, signed; never raises."""
        started = time.perf_counter()
        signed = headers(item.secret, item.event_id, int(time.time()), item.body)
        try:
            response = await client.post(item.url, content=item.body.encode(), headers=signed)
        except DestinationRefused as exc:
            return Outcome(None, _ms(started), f"destination refused: {exc}")
        except httpx2.TimeoutException:
            limit = self.settings.webhook_timeout_s
            return Outcome(None, _ms(started), f"no answer within {limit:g} s")
        except httpx2.HTTPError as exc:
            return Outcome(None, _ms(started), f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        error = None if 200 <= response.status_code < 300 else response.text[:MAX_ERROR_CHARS]
        return Outcome(response.status_code, _ms(started), error)

    def record(self, item: Claimed, outcome: Outcome) -> None:
        """Store the attempt, and the delivery's new state."""
        with transaction(self.engine) as session:
            row = session.get(DeliveryRow, item.delivery_id, with_for_update=True)
            if row is None:  # its endpoint was deleted meanwhile
                return
            session.add(
                AttemptRow(
                    tenant_id=row.tenant_id,
                    delivery_id=row.id,
                    attempt=item.attempt,
                    status_code=outcome.status_code,
                    latency_ms=round(outcome.latency_ms, 1),
                    error=outcome.error,
                )
            )
            row.last_status_code, row.last_error = outcome.status_code, outcome.error
            if row.status != "pending" or row.attempts != item.attempt:
                return  # another attempt (after this one's lease passed) decides
            self._settle(session, row, outcome)

    def _settle(self, session: Session, row: DeliveryRow, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        if outcome.delivered:
            row.status, row.delivered_at = "succeeded", now
            return
        wait = backoff_s(row.attempts, self.rng)
        if (now - row.created_at).total_seconds() + wait > self.settings.webhook_max_age_s:
            row.status = "failed"
            log.info("webhooks: delivery %s failed after %d attempts", row.id, row.attempts)
            return
        row.next_attempt_at = now + timedelta(seconds=wait)

    def run_once(self) -> int:
        """Claim, send and record one round of due deliveries, here and now; returns how
        many were sent (for tests; workers run the thread)."""

        async def round_() -> int:
            async with httpx2.AsyncClient(
                transport=GuardedTransport(self.allowed),
                timeout=self.settings.webhook_timeout_s,
                follow_redirects=False,
            ) as client:
                items = await asyncio.to_thread(self.claim, self.settings.webhook_concurrency)
                outcomes = await asyncio.gather(*(self.send(client, i) for i in items))
                for item, outcome in zip(items, outcomes, strict=True):
                    await asyncio.to_thread(self.record, item, outcome)
                return len(items)

        return asyncio.run(round_())


def _forget(
    sending: dict[uuid.UUID, asyncio.Task[None]], key: uuid.UUID
) -> Callable[[asyncio.Task[None]], None]:
    def done(_task: asyncio.Task[None]) -> None:
        sending.pop(key, None)

    return done


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
