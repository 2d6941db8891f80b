"""Following a run from async code: its events as Server-Sent Events, or waiting for its end.

Both subscribe to the run on the event hub first, then read the table, then sleep until woken
or the re-read interval passes, and read again: the table is the truth, notifications only cut
the delay. While the hub listens, an event wakes its followers at once, so the interval is long
(POLL_S); while its connection is down, nothing can wake them and they re-read often
(POLL_UNHEARD_S). Open streams thus cost the database almost nothing between events.
The engine is synchronous, so each read runs in a worker thread through the hub's read gate
(`EventHub.read`, a few at a time); no thread is held while a follower sleeps. A follower holds
a `Slot` of the process's stream caps (core.web.concurrency) from admission until it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Receive, Scope, Send

from agents.records import Event, Run
from agents.runs import store as run_store
from agents.runs.events import TERMINAL_TYPES, read_events
from api.events_hub import EventHub
from core.db import transaction
from core.errors import NotFound
from core.web.concurrency import Slot

log = logging.getLogger(__name__)

POLL_S = 10.0
"""Longest a follower sleeps without re-reading while the hub listens: a safety net only, since
Postgres delivers every committed notification to a live listener, and the hub wakes everyone
whenever its connection drops or comes back."""
POLL_UNHEARD_S = 1.0
"""Longest a follower sleeps without re-reading while the hub's connection is down."""
KEEPALIVE_S = 15.0
"""An idle stream sends a comment this often, so proxies and clients keep it open."""
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, PoolTimeout)
"""Database failures a stream outlives by reading again: a lost connection, a full pool."""


def sse_event(event: Event) -> str:
    """One event in the SSE wire format: id (its seq), event (its type), data (JSON)."""
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


@dataclass(frozen=True)
class _Batch:
    events: list[Event]
    """New events, in order."""
    done: bool
    """Nothing more will come: the run had ended before these events were read, or is gone."""


def _read(engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID, after: int) -> _Batch:
    with transaction(engine) as session:
        try:
            # The run first: if it had ended, its final event was committed with that change,
            # so the read below sees it (or it was at or before `after`).
            ended = run_store.get_run(session, tenant_id, run_id).finished
        except NotFound:  # deleted with its agent while followed
            return _Batch([], done=True)
        events = read_events(session, tenant_id, run_id, after=after)
        return _Batch(events, done=ended and not events)


def _poll_s(hub: EventHub) -> float:
    return POLL_S if hub.connected else POLL_UNHEARD_S


def _get_run(engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    with transaction(engine) as session:
        return run_store.get_run(session, tenant_id, run_id)


async def run_events(
    engine: Engine, hub: EventHub, tenant_id: uuid.UUID, run_id: uuid.UUID, after: int
) -> AsyncIterator[str]:
    """The run's events with seq > `after` in SSE form, replayed then tailed, ending after the
    run's final event. Cancelling the consumer (client gone) ends it and its subscription."""
    last_sent = time.monotonic()
    with hub.subscribe(run_id) as sub:
        while True:
            try:
                batch = await hub.read(_read, engine, tenant_id, run_id, after)
            except TRANSIENT_DB_ERRORS as exc:
                # The client can reconnect with Last-Event-ID, but a database hiccup should
                # not cost it a reconnect: keep the stream and try again. Anything else (a
                # data or programming error) would fail the same way forever: it ends the
                # stream instead, through the exception.
                log.warning("event stream of run %s: read failed (%s)", run_id, exc)
                batch = _Batch([], done=False)
            for event in batch.events:
                yield sse_event(event)
                after = event.seq
                last_sent = time.monotonic()
                if event.type in TERMINAL_TYPES:
                    return
            if batch.done:
                return
            if batch.events:
                continue  # a full page may have more behind it
            idle_for = time.monotonic() - last_sent
            if idle_for >= KEEPALIVE_S:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
                idle_for = 0.0
            await sub.wait(min(_poll_s(hub), KEEPALIVE_S - idle_for))


class _HeldStream(StreamingResponse):
    """A streaming response that gives its slot back when it ends, however it ends (the body
    finished, the client left, or the response never started)."""

    def __init__(self, content: AsyncIterator[str], slot: Slot) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()


def sse_response(
    engine: Engine,
    hub: EventHub,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    after: int,
    *,
    slot: Slot,
) -> StreamingResponse:
    """A text/event-stream response of `run_events`, holding `slot` while it lasts."""
    return _HeldStream(run_events(engine, hub, tenant_id, run_id, after), slot)


async def wait_for_end(
    engine: Engine,
    hub: EventHub,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    within_s: float,
    *,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> Run:
    """The run once it has ended or waits for a human's approval, or as it is after `within_s`
    seconds, or when `gone` says the client has left (nobody is waiting for the answer)."""
    deadline = time.monotonic() + within_s
    with hub.subscribe(run_id) as sub:
        while True:
            run = await hub.read(_get_run, engine, tenant_id, run_id)
            remaining = deadline - time.monotonic()
            settled = run.finished or run.status == "requires_action"
            if settled or remaining <= 0 or (gone is not None and await gone()):
                return run
            await sub.wait(min(_poll_s(hub), remaining))


async def fetch_run(engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    """The run of this tenant (NotFound otherwise), read in a worker thread."""
    return await asyncio.to_thread(_get_run, engine, tenant_id, run_id)
