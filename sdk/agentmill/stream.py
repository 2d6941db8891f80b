"""Following a run's events over SSE, resuming after a dropped connection.

`Follow` is the state (no I/O): the last event seen and how to ask for the rest. If the
connection drops before any event, the opening request is sent again (a message POST carries
an Idempotency-Key, so that returns the same run's stream); after that, the follower
reconnects to `GET /v1/runs/{id}/events` with `Last-Event-ID`, so no event is lost, and drops
any event it has already yielded, so none is repeated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from types import TracebackType

import httpx

from agentmill._http import HTTP, AsyncHTTP, Call, reraise, with_read
from agentmill.errors import AgentmillAPIError, RunTimeoutError
from agentmill.events import RunEvent, parse_event
from agentmill.models import Run
from agentmill.retry import RetryPolicy
from agentmill.sse import ServerSentEvent, SSEDecoder

STREAM_READ_S = 45.0
"""Shortest read timeout on a stream: the server sends a keepalive every 15 s when idle."""

_ENDED_EARLY = "the event stream ended before the run's final event"


def events_call(run_id: uuid.UUID | str, after: int) -> Call:
    """GET the run's events after sequence number `after`."""
    headers = {"Last-Event-ID": str(after)} if after else {}
    return Call("GET", f"/v1/runs/{run_id}/events", headers=headers)


def run_call(run_id: uuid.UUID | str) -> Call:
    """GET the run."""
    return Call("GET", f"/v1/runs/{run_id}")


@dataclass
class Follow:
    """Where a followed event stream stands."""

    opening: Call
    """The request that started the stream."""
    timeout: httpx.Timeout
    """The client's timeouts; the read timeout is stretched for streams."""
    run_id: uuid.UUID | None = None
    """Known from the first event on (or from the start, when following a run by id)."""
    last_event_id: int = 0
    """Id of the last event yielded."""
    finished: bool = False
    """The run's final event was yielded."""
    failures: int = 0
    """Reconnects in a row without a new event."""
    deadline: float | None = None
    """time.monotonic() after which to stop following (None: never)."""

    def accept(self, sse: ServerSentEvent) -> RunEvent | None:
        """The typed event of `sse`, or None for one already yielded."""
        id_ = int(sse.id) if sse.id is not None else self.last_event_id + 1
        if id_ <= self.last_event_id:
            return None
        event = parse_event(id_, sse.event, sse.data)
        self.run_id = event.run_id
        self.last_event_id = id_
        self.finished = event.terminal
        self.failures = 0
        return event

    def next_call(self, now: float) -> Call:
        """The request for the events not yet seen."""
        call = self.opening
        if self.run_id is not None:
            call = events_call(self.run_id, self.last_event_id)
        read = self.timeout.read
        if read is not None:
            read = max(read, STREAM_READ_S)
        if self.deadline is not None:
            # Past the deadline a read must not keep the caller waiting for the next keepalive.
            left = max(0.1, self.deadline - now + 0.5)
            read = left if read is None else min(read, left)
        return dataclasses.replace(call, timeout=with_read(self.timeout, read))

    def expired(self, now: float) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and now >= self.deadline

    def failed(self, error: Exception, policy: RetryPolicy) -> float | None:
        """Count a dropped or refused connection: seconds to wait before resuming, or None to
        give up. Resuming by run id is a GET; before that, as safe as resending the opening."""
        retry_safe = self.run_id is not None or self.opening.retry_safe
        delay = policy.after_failure(self.failures, error, retry_safe)
        self.failures += 1
        return delay


def follow(http: HTTP, state: Follow) -> Generator[RunEvent, None, None]:
    """The events of `state`'s stream until the run's final event (or the deadline)."""
    while not state.finished:
        try:
            with http.stream(state.next_call(time.monotonic())) as response:
                decoder = SSEDecoder()
                for line in response.iter_lines():
                    sse = decoder.decode(line)
                    event = state.accept(sse) if sse is not None else None
                    if event is not None:
                        yield event
                    if state.finished or state.expired(time.monotonic()):
                        return
            error: Exception = httpx.RemoteProtocolError(_ENDED_EARLY)
        except (httpx.TransportError, AgentmillAPIError) as exc:
            error = exc
        if state.expired(time.monotonic()):
            return
        delay = state.failed(error, http.retry)
        if delay is None:
            reraise(error)
        http.sleep(delay)


async def follow_async(http: AsyncHTTP, state: Follow) -> AsyncGenerator[RunEvent, None]:
    """The events of `state`'s stream until the run's final event (or the deadline)."""
    while not state.finished:
        try:
            async with http.stream(state.next_call(time.monotonic())) as response:
                decoder = SSEDecoder()
                async for line in response.aiter_lines():
                    sse = decoder.decode(line)
                    event = state.accept(sse) if sse is not None else None
                    if event is not None:
                        yield event
                    if state.finished or state.expired(time.monotonic()):
                        return
            error: Exception = httpx.RemoteProtocolError(_ENDED_EARLY)
        except (httpx.TransportError, AgentmillAPIError) as exc:
            error = exc
        if state.expired(time.monotonic()):
            return
        delay = state.failed(error, http.retry)
        if delay is None:
            reraise(error)
        await http.sleep(delay)


def following(
    timeout: httpx.Timeout, run_id: uuid.UUID | str, after: int, deadline: float | None = None
) -> Follow:
    """A follower of a known run's events after `after`."""
    return Follow(
        opening=events_call(run_id, after),
        timeout=timeout,
        run_id=uuid.UUID(str(run_id)),
        last_event_id=after,
        deadline=deadline,
    )


def _settled(run: Run) -> bool:
    return run.finished or run.status == "requires_action"


def wait(http: HTTP, run_id: uuid.UUID | str, timeout_s: float) -> Run:
    """The run once it has ended or waits for a human's approval; RunTimeoutError if neither
    within `timeout_s`. A replayed run.requires_action of a wait already decided is passed."""
    deadline = time.monotonic() + timeout_s
    events = follow(http, following(http.client.timeout, run_id, 0, deadline))
    with contextlib.closing(events):
        for event in events:
            if event.type == "run.requires_action":
                run = Run.model_validate(http.send(run_call(run_id)).json())
                if run.status == "requires_action":
                    return run
    run = Run.model_validate(http.send(run_call(run_id)).json())
    if not _settled(run):
        raise RunTimeoutError(run, timeout_s)
    return run


async def wait_async(http: AsyncHTTP, run_id: uuid.UUID | str, timeout_s: float) -> Run:
    """The run once it has ended or waits for a human's approval (see `wait`)."""
    deadline = time.monotonic() + timeout_s
    events = follow_async(http, following(http.client.timeout, run_id, 0, deadline))
    async with contextlib.aclosing(events):
        async for event in events:
            if event.type == "run.requires_action":
                run = Run.model_validate((await http.send(run_call(run_id))).json())
                if run.status == "requires_action":
                    return run
    run = Run.model_validate((await http.send(run_call(run_id))).json())
    if not _settled(run):
        raise RunTimeoutError(run, timeout_s)
    return run


class EventStream:
    """A run's typed events, ending after its final one; iterate it, close it to stop early."""

    def __init__(self, http: HTTP, state: Follow) -> None:
        self._state = state
        self._events = follow(http, state)

    @property
    def run_id(self) -> uuid.UUID | None:
        """The run's id, once its first event has arrived."""
        return self._state.run_id

    @property
    def last_event_id(self) -> int:
        """Id of the last event yielded (resume later with `runs.events(run_id, after=...)`)."""
        return self._state.last_event_id

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> RunEvent:
        return next(self._events)

    def close(self) -> None:
        """Stop following and close the connection."""
        self._events.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncEventStream:
    """A run's typed events, ending after its final one; `async for` it, `aclose` it to stop."""

    def __init__(self, http: AsyncHTTP, state: Follow) -> None:
        self._state = state
        self._events = follow_async(http, state)

    @property
    def run_id(self) -> uuid.UUID | None:
        """The run's id, once its first event has arrived."""
        return self._state.run_id

    @property
    def last_event_id(self) -> int:
        """Id of the last event yielded (resume later with `runs.events(run_id, after=...)`)."""
        return self._state.last_event_id

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> RunEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop following and close the connection."""
        await self._events.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
