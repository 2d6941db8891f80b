"""One LISTEN connection per API process that wakes whoever follows a run.

Workers append run events with `pg_notify(agentmill_run_events, '<run_id>:<seq>')` in the
transaction that writes them (agents/events.py). The hub holds one autocommit psycopg
connection listening on that channel and sets the wake-up flag of every subscription to the
run. A notification only says "look again": followers always re-read the table, so nothing
depends on the payload or on every notification arriving. When the connection drops, the hub
wakes everyone (they may have missed something) and reconnects with backoff; followers also
re-read on their own every second or so, so a lost notification costs at most that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy import Engine

from agents.events import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

# Without traffic, the connection is checked this often, so a silently dead one is noticed.
PING_EVERY_S = 30.0
CONNECT_TIMEOUT_S = 10
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


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
        self.connected = False
        """Whether the LISTEN connection is up right now."""

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
            self.connected = True
            log.info("listening for run events on %s", self._channel)
            # Anything may have happened while the connection was down.
            self._wake_all()
            while True:
                async for note in conn.notifies(timeout=PING_EVERY_S):
                    self.notify(note.payload)
                await conn.execute("SELECT 1")
