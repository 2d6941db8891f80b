"""client.sessions: send (wait, then follow) and stream (reconnecting), on scripted answers."""

from __future__ import annotations

import asyncio
import json
import time

import agentmill
import httpx
import pytest
from agentmill import MessageDeltaEvent, RunEvent, RunFinishedEvent, RunQueuedEvent

from tests.sdk.fakes import (
    AGENT_ID,
    NOW,
    RUN_ID,
    SESSION_ID,
    Server,
    answer,
    async_client,
    client,
    dropping,
    dropping_async,
    erased_body,
    error_body,
    event_stream,
    run_body,
    run_events,
    session_body,
)

EVENTS = run_events()
MESSAGES = f"/v1/sessions/{SESSION_ID}/messages"


def test_send_waits_on_the_server_and_returns_the_finished_run() -> None:
    server = Server([answer(200, run_body("succeeded"))])
    run = client(server).sessions.send(SESSION_ID, "hi", timeout_s=30)
    assert run.finished
    assert run.output == "hello"
    request = server.requests[0]
    assert (request.method, request.url.path) == ("POST", MESSAGES)
    assert json.loads(request.content) == {
        "content": "hi",
        "queue": False,
        "metadata": {},
        "wait": True,
        "timeout_s": 30,
    }
    assert request.headers["Idempotency-Key"]
    assert request.extensions["timeout"]["read"] == 45  # the server's wait plus slack


def test_send_caps_the_server_wait_at_its_maximum() -> None:
    server = Server([answer(200, run_body("succeeded"))])
    client(server).sessions.send(SESSION_ID, "hi", timeout_s=1000)
    assert json.loads(server.requests[0].content)["timeout_s"] == 300


def test_send_keeps_waiting_on_the_event_stream_after_a_202() -> None:
    server = Server(
        [
            answer(202, run_body("running")),
            lambda _r: event_stream(b"".join(EVENTS)),
            answer(200, run_body("succeeded")),
        ]
    )
    run = client(server).sessions.send(SESSION_ID, "hi", timeout_s=60)
    assert run.status == "succeeded"
    follow, final = server.requests[1:]
    assert follow.url.path == f"/v1/runs/{RUN_ID}/events"
    assert final.url.path == f"/v1/runs/{RUN_ID}"


def test_send_raises_run_timeout_with_the_run_when_it_does_not_end_in_time() -> None:
    def never(request: httpx.Request) -> httpx.Response:
        time.sleep(min(1.0, request.extensions["timeout"]["read"]))  # as a silent server would
        raise httpx.ReadTimeout("idle", request=request)

    server = Server([answer(202, run_body("running")), never, answer(200, run_body("running"))])
    with pytest.raises(agentmill.RunTimeoutError) as raised:
        client(server).sessions.send(SESSION_ID, "hi", timeout_s=0.3)
    assert raised.value.run.status == "running"
    read = server.requests[1].extensions["timeout"]["read"]
    assert read <= 0.8  # no longer than the time left (plus a little)


def test_a_retried_send_reuses_its_idempotency_key() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    server = Server([dropped, answer(200, run_body("succeeded"))])
    client(server).sessions.send(SESSION_ID, "hi")
    keys = {r.headers["Idempotency-Key"] for r in server.requests}
    assert len(server.requests) == 2
    assert len(keys) == 1


def test_each_send_gets_a_new_key_unless_one_is_given() -> None:
    server = Server([answer(200, run_body())] * 3)
    sessions = client(server).sessions
    sessions.send(SESSION_ID, "a")
    sessions.send(SESSION_ID, "b")
    sessions.send(SESSION_ID, "c", idempotency_key="mine")
    keys = [r.headers["Idempotency-Key"] for r in server.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "mine"


def test_a_busy_session_is_a_conflict() -> None:
    busy = answer(409, error_body("conflict", "session busy with run x", "session_id"))
    with pytest.raises(agentmill.ConflictError) as raised:
        client(Server([busy])).sessions.send(SESSION_ID, "hi")
    assert raised.value.param == "session_id"


def test_stream_yields_typed_events_to_the_final_one() -> None:
    server = Server([lambda _r: event_stream(b": keepalive\n\n" + b"".join(EVENTS))])
    with client(server).sessions.stream(SESSION_ID, "hi") as events:
        got = list(events)
        assert events.run_id == RUN_ID
        assert events.last_event_id == 6
    assert [e.id for e in got] == [1, 2, 3, 4, 5, 6]
    assert isinstance(got[0], RunQueuedEvent)
    assert isinstance(got[3], MessageDeltaEvent)
    assert isinstance(got[-1], RunFinishedEvent)
    assert got[-1].status == "succeeded"
    assert json.loads(server.requests[0].content)["stream"] is True
    assert server.requests[0].headers["Idempotency-Key"]


def test_a_dropped_stream_resumes_after_the_last_complete_event() -> None:
    cut = EVENTS[3][:20]  # event 4 arrives only in part before the connection drops
    server = Server(
        [
            lambda _r: event_stream(dropping([*EVENTS[:3], cut])),
            lambda _r: event_stream(b"".join(EVENTS[3:])),
        ]
    )
    got = list(client(server).sessions.stream(SESSION_ID, "hi"))
    assert [e.id for e in got] == [1, 2, 3, 4, 5, 6]
    resume = server.requests[1]
    assert (resume.method, resume.url.path) == ("GET", f"/v1/runs/{RUN_ID}/events")
    assert resume.headers["Last-Event-ID"] == "3"


def test_events_replayed_after_a_resume_are_not_repeated() -> None:
    server = Server(
        [
            lambda _r: event_stream(dropping(EVENTS[:4])),
            lambda _r: event_stream(b"".join(EVENTS[2:])),  # a server that replays too much
        ]
    )
    got = list(client(server).sessions.stream(SESSION_ID, "hi"))
    assert [e.id for e in got] == [1, 2, 3, 4, 5, 6]


def test_a_stream_that_ends_early_is_resumed_too() -> None:
    server = Server(
        [
            lambda _r: event_stream(b"".join(EVENTS[:2])),
            lambda _r: event_stream(b"".join(EVENTS[2:])),
        ]
    )
    got = list(client(server).sessions.stream(SESSION_ID, "hi"))
    assert [e.id for e in got] == [1, 2, 3, 4, 5, 6]
    assert server.requests[1].headers["Last-Event-ID"] == "2"


def test_a_drop_before_the_first_event_resends_the_post_with_the_same_key() -> None:
    server = Server(
        [
            lambda _r: event_stream(dropping([])),
            lambda _r: event_stream(b"".join(EVENTS)),
        ]
    )
    got = list(client(server).sessions.stream(SESSION_ID, "hi"))
    assert len(got) == 6
    first, again = server.requests
    assert again.method == "POST"
    assert again.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]


def test_a_stream_that_keeps_dropping_gives_up_with_a_connection_error() -> None:
    server = Server([lambda _r: event_stream(dropping([]))] * 4)
    with pytest.raises(agentmill.APIConnectionError):
        list(client(server).sessions.stream(SESSION_ID, "hi"))
    assert len(server.requests) == 4  # the first attempt and three retries


def test_progress_resets_the_reconnect_budget() -> None:
    script = [lambda _r, n=n: event_stream(dropping([EVENTS[n]])) for n in range(5)]
    server = Server([*script, lambda _r: event_stream(EVENTS[5])])
    assert [e.id for e in client(server).sessions.stream(SESSION_ID, "hi")] == [1, 2, 3, 4, 5, 6]


def test_a_stream_error_before_events_is_raised() -> None:
    busy = answer(409, error_body("conflict", "busy", "session_id"))
    with pytest.raises(agentmill.ConflictError):
        list(client(Server([busy])).sessions.stream(SESSION_ID, "hi"))


def test_the_async_stream_resumes_with_last_event_id() -> None:
    server = Server(
        [
            lambda _r: event_stream(dropping_async(EVENTS[:2])),
            lambda _r: event_stream(b"".join(EVENTS[2:])),
        ]
    )

    async def main() -> list[RunEvent]:
        async with async_client(server) as am, am.sessions.stream(SESSION_ID, "hi") as events:
            return [event async for event in events]

    assert [e.id for e in asyncio.run(main())] == [1, 2, 3, 4, 5, 6]
    assert server.requests[1].headers["Last-Event-ID"] == "2"


def test_the_async_send_follows_after_a_202() -> None:
    server = Server(
        [
            answer(202, run_body("running")),
            lambda _r: event_stream(b"".join(EVENTS)),
            answer(200, run_body("succeeded")),
        ]
    )

    async def main() -> agentmill.Run:
        async with async_client(server) as am:
            return await am.sessions.send(SESSION_ID, "hi")

    assert asyncio.run(main()).status == "succeeded"


def test_create_get_and_messages_across_pages() -> None:
    session = {
        "id": str(SESSION_ID),
        "agent_id": str(RUN_ID),
        "user_id": "ada",
        "metadata": {},
        "created_at": NOW,
    }

    def message(seq: int) -> dict[str, object]:
        return {
            "id": f"5f0c0000-0000-4000-8000-00000000010{seq}",
            "seq": seq,
            "session_id": str(SESSION_ID),
            "run_id": None,
            "role": "user",
            "content": f"m{seq}",
            "created_at": NOW,
        }

    server = Server(
        [
            answer(201, session),
            answer(200, session),
            answer(200, {"data": [message(1), message(2)], "next_cursor": "2"}),
            answer(200, {"data": [message(3)], "next_cursor": None}),
        ]
    )
    sessions = client(server).sessions
    assert sessions.create("a1", user_id="ada").user_id == "ada"
    assert json.loads(server.requests[0].content) == {"user_id": "ada", "metadata": {}}
    assert sessions.get(SESSION_ID).id == SESSION_ID
    assert [m.content for m in sessions.messages(SESSION_ID, limit=2)] == ["m1", "m2", "m3"]
    assert dict(server.requests[2].url.params) == {"limit": "2"}
    assert dict(server.requests[3].url.params) == {"limit": "2", "cursor": "2"}


def test_list_follows_the_cursor_with_the_user_on_every_page() -> None:
    server = Server(
        [
            answer(200, {"data": [session_body(user_id="ada")] * 2, "next_cursor": "c1"}),
            answer(200, {"data": [session_body(user_id="ada")], "next_cursor": None}),
        ]
    )
    listed = list(client(server).sessions.list(AGENT_ID, user_id="ada", limit=2))
    assert [s.user_id for s in listed] == ["ada"] * 3
    assert all(isinstance(s, agentmill.Session) for s in listed)
    assert {r.url.path for r in server.requests} == {f"/v1/agents/{AGENT_ID}/sessions"}
    first, second = (dict(r.url.params) for r in server.requests)
    assert first == {"limit": "2", "user_id": "ada"}
    assert second == {"limit": "2", "user_id": "ada", "cursor": "c1"}


def test_page_without_a_user_sends_only_the_limit_and_cursor() -> None:
    server = Server([answer(200, {"data": [session_body()], "next_cursor": "c2"})])
    page = client(server).sessions.page(AGENT_ID, limit=1, cursor="c1")
    assert page.next_cursor == "c2"
    assert dict(server.requests[0].url.params) == {"limit": "1", "cursor": "c1"}


def test_delete_returns_the_counts_and_is_retried_as_idempotent() -> None:
    counts = erased_body(sessions=1, messages=2, runs=1, run_events=3, memories=1)
    server = Server([answer(503, error_body("unavailable", "db")), answer(200, {"erased": counts})])
    erased = client(server).sessions.delete(SESSION_ID)
    assert isinstance(erased, agentmill.ErasedCounts)
    assert (erased.sessions, erased.messages, erased.runs, erased.run_events) == (1, 2, 1, 3)
    assert (erased.memories, erased.blocks) == (1, 0)
    assert [(r.method, r.url.path) for r in server.requests] == [
        ("DELETE", f"/v1/sessions/{SESSION_ID}")
    ] * 2


def test_async_list_and_delete() -> None:
    server = Server(
        [
            answer(200, {"data": [session_body(user_id="ada")], "next_cursor": "c1"}),
            answer(200, {"data": [session_body(user_id="bo")], "next_cursor": None}),
            answer(200, {"erased": erased_body(sessions=1)}),
        ]
    )

    async def main() -> tuple[list[str | None], int]:
        async with async_client(server) as am:
            users = [s.user_id async for s in am.sessions.list(AGENT_ID, limit=1)]
            erased = await am.sessions.delete(SESSION_ID)
            return users, erased.sessions

    assert asyncio.run(main()) == (["ada", "bo"], 1)
    assert server.requests[1].url.params["cursor"] == "c1"
