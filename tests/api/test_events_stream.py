"""The run event stream (SSE): replay from Last-Event-ID, live tailing through LISTEN/NOTIFY,
the end after the final event, keepalives, and a client that leaves."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, OperationalError

from agents.runs.events import MessageDelta, StepStarted
from api import streaming
from api.events_hub import EventHub
from core.db import transaction
from tests.api import support
from tests.api.support import Headers


@dataclass
class Sse:
    """One parsed SSE message (a comment has only `comment`)."""

    id: int | None = None
    event: str | None = None
    data: dict[str, Any] | None = None
    comment: str | None = None


def _messages(lines: Iterator[str]) -> Iterator[Sse]:
    current = Sse()
    for line in lines:
        if line == "":
            yield current
            current = Sse()
        elif line.startswith(":"):
            current.comment = line[1:].strip()
        else:
            field, _, value = line.partition(": ")
            if field == "id":
                current.id = int(value)
            elif field == "event":
                current.event = value
            elif field == "data":
                current.data = json.loads(value)


def _read_all(client: TestClient, url: str, headers: Headers) -> list[Sse]:
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        return list(_messages(response.iter_lines()))


def _start_run(client: TestClient, auth: Headers, session_id: str) -> str:
    response = client.post(
        f"/v1/sessions/{session_id}/messages", json={"content": "hi"}, headers=auth
    )
    assert response.status_code == 202
    ident: str = response.json()["id"]
    return ident


def _finished_run(engine: Engine, client: TestClient, auth: Headers, session_id: str) -> str:
    """A run with events 1 run.queued, 2 run.started, 3 step.started, 4 message.delta,
    5 message, 6 run.succeeded."""
    run_id = _start_run(client, auth, session_id)
    support.start(engine, run_id)
    support.event(engine, run_id, StepStarted(step=1, attempt=1))
    support.event(engine, run_id, MessageDelta(step=1, attempt=1, delta="hel"))
    support.finish(engine, run_id, output="hello")
    return run_id


def _hub(client: TestClient) -> EventHub:
    app: Any = client.app
    hub: EventHub = app.state.events_hub
    return hub


def _wait_until(condition: Any, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_full_replay_of_a_finished_run(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    run_id = _finished_run(engine, client, auth, session_id)
    events = _read_all(client, f"/v1/runs/{run_id}/events", auth)
    assert [(e.id, e.event) for e in events] == [
        (1, "run.queued"),
        (2, "run.started"),
        (3, "step.started"),
        (4, "message.delta"),
        (5, "message"),
        (6, "run.succeeded"),
    ]
    assert all(e.data is not None and e.data["run_id"] == run_id for e in events)
    assert events[3].data == {"run_id": run_id, "step": 1, "attempt": 1, "delta": "hel"}
    assert events[4].data is not None
    assert events[4].data["content"] == "hello"
    assert events[5].data is not None
    assert events[5].data["status"] == "succeeded"


def test_replay_from_last_event_id_sends_exactly_the_missing_events(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    run_id = _finished_run(engine, client, auth, session_id)
    url = f"/v1/runs/{run_id}/events"
    resumed = _read_all(client, url, {**auth, "Last-Event-ID": "3"})
    assert [e.id for e in resumed] == [4, 5, 6]
    assert [e.id for e in _read_all(client, f"{url}?after=4", auth)] == [5, 6]
    # The header is what a reconnecting EventSource sends: it wins over the URL's `after`.
    assert [e.id for e in _read_all(client, f"{url}?after=1", {**auth, "Last-Event-ID": "5"})] == [
        6
    ]
    # Past the final event there is nothing left: the stream ends at once.
    assert _read_all(client, url, {**auth, "Last-Event-ID": "6"}) == []


@pytest.mark.parametrize(("header", "query"), [("abc", ""), ("-1", ""), (None, "?after=-2")])
def test_bad_positions_are_422(
    client: TestClient,
    auth: Headers,
    session_id: str,
    header: str | None,
    query: str,
) -> None:
    run_id = _start_run(client, auth, session_id)
    headers = {**auth, "Last-Event-ID": header} if header is not None else auth
    response = client.get(f"/v1/runs/{run_id}/events{query}", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["param"] in ("Last-Event-ID", "after")


def _tail_while_working(
    client: TestClient, auth: Headers, engine: Engine, run_id: str
) -> list[tuple[int | None, str | None, float]]:
    """Open the run's stream, and once its first event has arrived, play a worker's part in
    another thread; returns (seq, type, seconds since the stream opened) per message."""
    received: list[tuple[int | None, str | None, float]] = []

    def work() -> None:
        _wait_until(lambda: len(received) >= 1)
        support.start(engine, run_id)
        for i in range(3):
            time.sleep(0.1)
            support.event(engine, run_id, MessageDelta(step=1, attempt=1, delta=f"t{i}"))
        support.finish(engine, run_id, output="t0t1t2")

    worker = threading.Thread(target=work)
    started = time.monotonic()
    worker.start()
    try:
        with client.stream("GET", f"/v1/runs/{run_id}/events", headers=auth) as response:
            for message in _messages(response.iter_lines()):
                received.append((message.id, message.event, time.monotonic() - started))
    finally:
        worker.join()
    return received


TAILED = [
    (1, "run.queued"),
    (2, "run.started"),
    (3, "message.delta"),
    (4, "message.delta"),
    (5, "message.delta"),
    (6, "message"),
    (7, "run.succeeded"),
]


def test_live_events_are_tailed_until_the_final_one(
    client: TestClient,
    auth: Headers,
    session_id: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With the safety-net poll this slow, only a notification can deliver events in time.
    monkeypatch.setattr(streaming, "POLL_S", 60.0)
    _wait_until(lambda: _hub(client).connected)
    run_id = _start_run(client, auth, session_id)
    received = _tail_while_working(client, auth, engine, run_id)
    assert [(seq, kind) for seq, kind, _ in received] == TAILED
    assert received[-1][2] < 5  # woken by NOTIFY, not by the poll (15 s here)
    _wait_until(lambda: _hub(client).waiting == 0)


def test_missed_notifications_are_covered_by_the_poll(
    client: TestClient,
    auth: Headers,
    session_id: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "POLL_S", 0.1)
    hub = _hub(client)
    monkeypatch.setattr(hub, "notify", lambda payload: None)  # every notification is lost
    run_id = _start_run(client, auth, session_id)
    received = _tail_while_working(client, auth, engine, run_id)
    assert [(seq, kind) for seq, kind, _ in received] == TAILED


def test_post_with_stream_answers_with_the_events(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    def work() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with transaction(engine) as session:
                ids = session.scalars(text("SELECT id FROM runs")).all()
            if ids:
                support.start(engine, ids[0])
                support.finish(engine, ids[0], output="streamed")
                return
            time.sleep(0.05)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        body = {"content": "hi", "stream": True}
        url = f"/v1/sessions/{session_id}/messages"
        with client.stream("POST", url, json=body, headers=auth) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(_messages(response.iter_lines()))
    finally:
        worker.join()
    assert [e.event for e in events] == ["run.queued", "run.started", "message", "run.succeeded"]
    assert events[2].data is not None
    assert events[2].data["content"] == "streamed"


def test_idle_stream_sends_keepalives_and_a_leaving_client_ends_it(
    client: TestClient,
    auth: Headers,
    session_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "KEEPALIVE_S", 0.2)
    monkeypatch.setattr(streaming, "POLL_S", 0.05)
    run_id = _start_run(client, auth, session_id)
    seen: list[Sse] = []
    with client.stream("GET", f"/v1/runs/{run_id}/events", headers=auth) as response:
        for message in _messages(response.iter_lines()):
            seen.append(message)
            if sum(m.comment == "keepalive" for m in seen) == 2:
                assert _hub(client).waiting == 1
                break
    assert seen[0].event == "run.queued"
    assert [m.comment for m in seen[1:]] == ["keepalive", "keepalive"]
    # The client left mid-run: its generator and subscription are gone.
    _wait_until(lambda: _hub(client).waiting == 0)


def test_hub_reconnects_after_losing_its_connection(
    client: TestClient,
    auth: Headers,
    session_id: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "POLL_S", 60.0)
    hub = _hub(client)
    _wait_until(lambda: hub.connected)
    with transaction(engine) as session:
        killed = session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'agentmill-events'"
            )
        )
    assert killed == 1
    _wait_until(lambda: not hub.connected)
    _wait_until(lambda: hub.connected)
    # Notifications flow on the new connection.
    run_id = _start_run(client, auth, session_id)
    received = _tail_while_working(client, auth, engine, run_id)
    assert [(seq, kind) for seq, kind, _ in received] == TAILED
    assert received[-1][2] < 5


def _failing_reads(
    monkeypatch: pytest.MonkeyPatch, first: Exception, then: streaming._Batch
) -> list[int]:
    calls: list[int] = []

    def read(engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID, after: int) -> Any:
        calls.append(after)
        if len(calls) == 1:
            raise first
        return then

    monkeypatch.setattr(streaming, "_read", read)
    monkeypatch.setattr(streaming, "POLL_UNHEARD_S", 0.01)  # the hub of `_collect` never listens
    return calls


async def _collect() -> list[str]:
    engine = cast(Engine, None)  # _read is replaced: nothing touches the database
    hub = EventHub("postgresql://unused")  # never started: subscriptions still work
    return [
        chunk async for chunk in streaming.run_events(engine, hub, uuid.uuid4(), uuid.uuid4(), 0)
    ]


def test_a_lost_connection_is_read_again_and_the_stream_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lost = OperationalError("SELECT", {}, Exception("server closed the connection"))
    calls = _failing_reads(monkeypatch, lost, streaming._Batch([], done=True))
    assert asyncio.run(_collect()) == []
    assert calls == [0, 0]


def test_a_permanent_database_error_ends_the_stream_instead_of_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = DataError("SELECT", {}, Exception("integer out of range"))
    calls = _failing_reads(monkeypatch, bad, streaming._Batch([], done=True))
    with pytest.raises(DataError):
        asyncio.run(_collect())
    assert calls == [0]


def _reads_until_done(monkeypatch: pytest.MonkeyPatch, empty_reads: int) -> list[float]:
    """Replace `_read`: `empty_reads` reads find nothing, the next finds the run ended; the
    times of the reads are returned."""
    at: list[float] = []

    def read(engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID, after: int) -> Any:
        at.append(time.monotonic())
        return streaming._Batch([], done=len(at) > empty_reads)

    monkeypatch.setattr(streaming, "_read", read)
    return at


def test_while_the_hub_is_down_followers_re_read_often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "POLL_S", 60.0)
    monkeypatch.setattr(streaming, "POLL_UNHEARD_S", 0.05)
    at = _reads_until_done(monkeypatch, empty_reads=3)

    async def follow() -> list[str]:
        async with asyncio.timeout(10):  # a 60 s sleep fails the test instead of hanging it
            return await _collect()

    assert asyncio.run(follow()) == []
    assert len(at) == 4
    assert at[-1] - at[0] < 5


def test_while_the_hub_listens_followers_sleep_until_woken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "POLL_S", 60.0)
    monkeypatch.setattr(streaming, "POLL_UNHEARD_S", 0.05)
    at = _reads_until_done(monkeypatch, empty_reads=1)
    hub = EventHub("postgresql://unused")
    hub.connected = True  # as if listening: only a wake-up (or 60 s) brings the next read
    run_id = uuid.uuid4()
    engine = cast(Engine, None)

    async def follow() -> tuple[list[str], bool]:
        stream = streaming.run_events(engine, hub, uuid.uuid4(), run_id, 0)
        task = asyncio.ensure_future(anext(stream, None))
        await asyncio.sleep(0.5)
        slept = not task.done() and len(at) == 1
        hub.notify(f"{run_id}:1")
        async with asyncio.timeout(10):
            first = await task
        return ([] if first is None else [first]), slept

    chunks, slept = asyncio.run(follow())
    assert chunks == []
    assert slept
    assert len(at) == 2
