"""client.runs on scripted answers."""

from __future__ import annotations

import asyncio

import httpx
from agentmill import RunFilter

from tests.sdk.fakes import (
    AGENT_ID,
    RUN_ID,
    Server,
    answer,
    async_client,
    client,
    dropping,
    event_stream,
    run_body,
    run_events,
)

EVENTS = run_events()


def test_events_after_a_position_and_resumed_after_a_drop() -> None:
    server = Server(
        [
            lambda _r: event_stream(dropping(EVENTS[2:4])),
            lambda _r: event_stream(b"".join(EVENTS[4:])),
        ]
    )
    got = list(client(server).runs.events(RUN_ID, after=2))
    assert [e.id for e in got] == [3, 4, 5, 6]
    assert [r.headers.get("Last-Event-ID") for r in server.requests] == ["2", "4"]


def test_cancel_is_retried_as_safe_to_repeat() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    server = Server([dropped, answer(200, run_body("cancelled"))])
    assert client(server).runs.cancel(RUN_ID).status == "cancelled"
    assert len(server.requests) == 2


def test_get_steps_and_wait() -> None:
    step = {
        "step": 1,
        "context": [{"role": "system", "content": "x"}],
        "output": {"content": "hello", "tool_calls": [], "finish_reason": "stop"},
        "decision": "final",
        "invalid_attempts": 0,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0.0},
        "model_ms": 12.5,
        "tool_calls": [
            {
                "call_id": "c",
                "position": 0,
                "name": "calc",
                "arguments": "{}",
                "result": None,
                "is_error": False,
            }
        ],
        "created_at": "2025-01-01T00:00:00Z",
    }
    server = Server(
        [
            answer(200, run_body("running")),
            answer(200, {"data": [step], "next_cursor": None}),
            lambda _r: event_stream(b"".join(EVENTS)),
            answer(200, run_body("succeeded")),
        ]
    )
    runs = client(server).runs
    assert not runs.get(RUN_ID).finished
    steps = runs.steps(RUN_ID)
    assert steps[0].tool_calls[0].result is None
    assert runs.wait(RUN_ID, timeout_s=10).output == "hello"


def test_list_sends_the_filter_and_follows_the_cursor() -> None:
    server = Server(
        [
            answer(200, {"data": [run_body("failed")], "next_cursor": "c1"}),
            answer(200, {"data": [run_body("failed")], "next_cursor": None}),
        ]
    )
    where = RunFilter(status="failed", agent_id=AGENT_ID, user_id="ann")
    got = list(client(server).runs.list(where, limit=1))
    assert [run.status for run in got] == ["failed", "failed"]
    first, second = (dict(r.url.params) for r in server.requests)
    assert first == {"limit": "1", "status": "failed", "agent_id": str(AGENT_ID), "user_id": "ann"}
    assert second == {**first, "cursor": "c1"}
    assert {r.url.path for r in server.requests} == {"/v1/runs"}


def test_async_list_without_a_filter() -> None:
    server = Server([answer(200, {"data": [run_body()], "next_cursor": None})])

    async def listed() -> list[str]:
        async with async_client(server) as api:
            return [run.status async for run in api.runs.list()]

    assert asyncio.run(listed()) == ["succeeded"]
    assert dict(server.requests[0].url.params) == {"limit": "50"}
