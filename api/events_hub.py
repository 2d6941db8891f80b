"""One LISTEN connection per API process that wakes whoever follows a run, and tells the key
cache when a key is revoked.

Workers append run events with `pg_notify(agentmill_run_events, '<run_id>:<seq>')` in the
transaction that writes them (agents/runs/events.py). The hub holds one autocommit psycopg
connection listening on that channel and sets the wake-up flag of every subscription to the
run. A notification only says "look again": followers always re-read the table, so nothing
depends on the payload or on every notification arriving. When the connection drops, the hub
wakes everyone (they may have missed something) and reconnects with backoff; followers also
re-read on their own, about every second while the connection is down and every ten seconds
while it is up (api.streaming), so a lost notification costs at most that delay.

The same connection listens for key revocations (core.tenants.KEY_REVOKED_CHANNEL): each one,
and each (re)connect, moves `key_epoch` on, and the key cache (core.web.auth_guard) trusts only
lookups made at the current epoch; while the connection is down there is no epoch at all.

Followers' reads go through `read`, at most FOLLOWER_READS at a time, so however many streams
are open they hold few of the API's pooled connections and the other requests keep the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
from sqlalchemy import Engine

from agents.runs.events import NOTIFY_CHANNEL
from core.tenants import KEY_REVOKED_CHANNEL

log = logging.getLogger(__name__)

# Without traffic, the connection is checked this often, so a silently dead one is noticed.
PING_EVERY_S = 30.0
CONNECT_TIMEOUT_S = 10
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
FOLLOWER_READS = 4
"""Followers' database reads in flight at once (the API pool holds 10 connections)."""

T = TypeVar("T")


def libpq_url(engine: Engine) -> str:
    """The engine's database as a libpq URL (no SQLAlchemy driver suffix)."""
    url = engine.url.render_as_string(hide_password=False)
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


class Subscription:
    """A follower's wake-up flag for one run; set by a notification, cleared by `wait`."""

    def __init__(self) -> None:
        self._flag = asyncio.Event()

    def wake(self) -> None:
        """Something may have happened to the run."""
        self._flag.set()

    async def wait(self, at_most_s: float) -> bool:
        """Sleep until woken or `at_most_s` passes; True when woken. A wake-up that came
        before the call counts, so a notification between a read and this call is not lost."""
        try:
            async with asyncio.timeout(at_most_s):
                await self._flag.wait()
        except TimeoutError:
            return False
        self._flag.clear()
        return True


class EventHub:
    """Dispatches run-event notifications to subscriptions (one event loop; not thread-safe)."""

    def __init__(self, conninfo: str, channel: str = NOTIFY_CHANNEL) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._reads: asyncio.Semaphore | None = None
        self._epoch = 0
        self.connected = False
        """Whether the LISTEN connection is up right now."""

    @property
    def key_epoch(self) -> int | None:
        """Moves on with every key revocation heard and every reconnect; None while the
        connection is down (revocations may be missed: cache nothing)."""
        return self._epoch if self.connected else None

    def key_revoked(self, key_id: str) -> None:
        """Handle a revocation notification: every cached key lookup is stale now."""
        self._epoch += 1
        log.info("API key %s revoked: key cache cleared", key_id)

    async def read(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a worker thread, at most FOLLOWER_READS at a time (followers' reads)."""
        if self._reads is None:
            self._reads = asyncio.Semaphore(FOLLOWER_READS)
        async with self._reads:
            return await asyncio.to_thread(fn, *args)

    @property
    def waiting(self) -> int:
        """How many subscriptions are open (every one belongs to a live request)."""
        return sum(len(subs) for subs in self._subscriptions.values())

    @contextlib.contextmanager
    def subscribe(self, run_id: uuid.UUID) -> Iterator[Subscription]:
        """A subscription to the run for the block. Subscribe before reading the table."""
        key = str(run_id)
        sub = Subscription()
        self._subscriptions.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subscriptions.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscriptions[key]

    def notify(self, payload: str) -> None:
        """Handle a notification `<run_id>:<seq>`."""
        run_id = payload.partition(":")[0]
        for sub in self._subscriptions.get(run_id, ()):
            sub.wake()

    def _wake_all(self) -> None:
        for subs in self._subscriptions.values():
            for sub in subs:
                sub.wake()

    async def start(self) -> None:
        """Start listening in the background (returns at once; connects with retries)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="agentmill-events-hub")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    async def _run(self) -> None:
        delay = BACKOFF_FIRST_S
        while True:
            try:
                await self._listen()
            except Exception as exc:  # any failure: listen again later, followers poll meanwhile
                problem = f"{type(exc).__name__}: {exc}"
            else:
                problem = "listener returned"
            if self.connected:  # it had been up: start the backoff over
                delay = BACKOFF_FIRST_S
            self.connected = False
            self._wake_all()
            log.warning("run-event listener down (%s); reconnecting in %.1f s", problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name="agentmill-events",
            connect_timeout=CONNECT_TIMEOUT_S,
        ) as conn:
            await conn.execute(f'LISTEN "{self._channel}"')
            await conn.execute(f'LISTEN "{KEY_REVOKED_CHANNEL}"')
            self._epoch += 1  # before `connected`: no lookup from before the gap is trusted
            self.connected = True
            log.info("listening for run events on %s", self._channel)
            # Anything may have happened while the connection was down.
            self._wake_all()
            while True:
                async for note in conn.notifies(timeout=PING_EVERY_S):
                    if note.channel == KEY_REVOKED_CHANNEL:
                        self.key_revoked(note.payload)
                    else:
                        self.notify(note.payload)
                await conn.execute("SELECT 1")
