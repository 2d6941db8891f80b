"""Runs over REST: state, steps with their recorded context, cancel, tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.records import CalledTool, StepOutput, Usage
from agents.runs import store as run_store
from agents.runs.store import StepWrite
from core.db import transaction
from tests.api import support
from tests.api.support import Headers, RecordingQueue


def _start_run(client: TestClient, auth: Headers, session_id: str, **body: object) -> str:
    response = client.post(
        f"/v1/sessions/{session_id}/messages", json={"content": "hi", **body}, headers=auth
    )
    assert response.status_code == 202, response.text
    ident: str = response.json()["id"]
    return ident


def _event_types(client: TestClient, auth: Headers, run_id: str) -> list[str]:
    text = client.get(f"/v1/runs/{run_id}/events", headers=auth).text
    return [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]


def test_get_run(client: TestClient, auth: Headers, session_id: str, engine: Engine) -> None:
    run_id = _start_run(client, auth, session_id)
    run = client.get(f"/v1/runs/{run_id}", headers=auth).json()
    assert (run["id"], run["status"], run["started_at"]) == (run_id, "queued", None)
    support.start(engine, run_id)
    support.finish(engine, run_id, output="hello")
    run = client.get(f"/v1/runs/{run_id}", headers=auth).json()
    assert (run["status"], run["output"], run["attempts"]) == ("succeeded", "hello", 1)
    assert run["started_at"] is not None
    assert run["finished_at"] is not None


def test_steps_carry_their_context_and_tool_calls(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    run_id = _start_run(client, auth, session_id)
    assert client.get(f"/v1/runs/{run_id}/steps", headers=auth).json() == {
        "data": [],
        "next_cursor": None,
    }
    support.start(engine, run_id)
    context = [{"role": "system", "content": "You remember: likes tea"}, {"role": "user"}]
    with transaction(engine) as session:
        row = run_store.owned(session, uuid.UUID(run_id), support.OWNER)
        run_store.record_step(
            session,
            row,
            StepWrite(
                step=1,
                context=context,
                output=StepOutput(
                    content="",
                    tool_calls=(CalledTool("call-1", "calculator", '{"expression": "2+2"}'),),
                    finish_reason="tool_calls",
                ),
                decision="tools",
                invalid_attempts=0,
                usage=Usage(prompt_tokens=12, completion_tokens=3, cost_usd=0.0),
                model_ms=41.5,
            ),
        )
        run_store.record_tool_result(session, row, 1, "call-1", "4", False)
    steps = client.get(f"/v1/runs/{run_id}/steps", headers=auth).json()["data"]
    assert len(steps) == 1
    step = steps[0]
    assert step["step"] == 1
    assert step["context"] == context
    assert step["decision"] == "tools"
    assert step["output"] == {  # the stored shape: `failure` and `retry_message` only when set
        "content": "",
        "tool_calls": [
            {"id": "call-1", "name": "calculator", "arguments": '{"expression": "2+2"}'}
        ],
        "finish_reason": "tool_calls",
        "model": None,
    }
    assert step["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "cost_usd": 0.0}
    assert step["model_ms"] == 41.5
    assert step["tool_calls"] == [
        {
            "call_id": "call-1",
            "position": 0,
            "name": "calculator",
            "arguments": '{"expression": "2+2"}',
            "result": "4",
            "is_error": False,
        }
    ]
    assert client.get(f"/v1/runs/{run_id}", headers=auth).json()["usage"]["prompt_tokens"] == 12


def test_cancel_a_queued_run(client: TestClient, auth: Headers, session_id: str) -> None:
    run_id = _start_run(client, auth, session_id)
    response = client.post(f"/v1/runs/{run_id}/cancel", headers=auth)
    assert response.status_code == 200
    run = response.json()
    assert (run["status"], run["stop_reason"], run["cancel_requested"]) == (
        "cancelled",
        "cancelled",
        True,
    )
    assert run["finished_at"] is not None
    assert _event_types(client, auth, run_id) == ["run.queued", "run.cancelled"]
    # Idempotent: cancelling again changes nothing and appends no event.
    again = client.post(f"/v1/runs/{run_id}/cancel", headers=auth)
    assert again.status_code == 200
    assert again.json() == run
    assert _event_types(client, auth, run_id) == ["run.queued", "run.cancelled"]
    # The session is free again.
    assert client.post(
        f"/v1/sessions/{session_id}/messages", json={"content": "next"}, headers=auth
    ).is_success


def test_cancelling_a_queued_run_sends_the_one_behind_it(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue
) -> None:
    first = _start_run(client, auth, session_id)
    second = _start_run(client, auth, session_id, queue=True)
    assert run_queue.runs == [uuid.UUID(first)]
    client.post(f"/v1/runs/{first}/cancel", headers=auth)
    assert run_queue.runs == [uuid.UUID(first), uuid.UUID(second)]


def test_cancel_a_running_run_asks_its_worker(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    run_id = _start_run(client, auth, session_id)
    support.start(engine, run_id)
    run = client.post(f"/v1/runs/{run_id}/cancel", headers=auth).json()
    assert (run["status"], run["cancel_requested"]) == ("running", True)


def test_cancel_a_finished_run_changes_nothing(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    run_id = _start_run(client, auth, session_id)
    support.start(engine, run_id)
    support.finish(engine, run_id, output="done")
    run = client.post(f"/v1/runs/{run_id}/cancel", headers=auth).json()
    assert (run["status"], run["output"], run["cancel_requested"]) == ("succeeded", "done", False)


def test_another_tenants_run_is_404_everywhere(
    client: TestClient,
    auth: Headers,
    other_auth: Headers,
    session_id: str,
    run_queue: RecordingQueue,
) -> None:
    run_id = _start_run(client, auth, session_id)
    for path in ("", "/steps", "/events"):
        response = client.get(f"/v1/runs/{run_id}{path}", headers=other_auth)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    assert client.post(f"/v1/runs/{run_id}/cancel", headers=other_auth).status_code == 404
    assert client.get(f"/v1/runs/{run_id}", headers=auth).json()["status"] == "queued"


@pytest.mark.parametrize("ident", ["nope", str(uuid.uuid4())])
def test_unknown_or_malformed_run_ids_are_404(
    client: TestClient, auth: Headers, ident: str
) -> None:
    for path in ("", "/steps", "/events"):
        assert client.get(f"/v1/runs/{ident}{path}", headers=auth).status_code == 404
    assert client.post(f"/v1/runs/{ident}/cancel", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"after": 2**31}, {}), ({}, {"Last-Event-ID": str(2**31)})],
)
def test_an_event_seq_past_the_column_is_422(
    client: TestClient,
    auth: Headers,
    session_id: str,
    params: dict[str, int],
    headers: dict[str, str],
) -> None:
    # Found by the fuzzer: the stream retried the failing query (seq is a 4-byte column) until
    # the client left.
    run_id = _start_run(client, auth, session_id)
    client.post(f"/v1/runs/{run_id}/cancel", headers=auth)
    url = f"/v1/runs/{run_id}/events"
    response = client.get(url, params=params, headers={**auth, **headers})
    assert response.status_code == 422, response.text
    ended = client.get(url, params={"after": 2**31 - 1}, headers=auth)
    assert ended.status_code == 200
    assert ended.text == ""  # nothing after that seq, and the run has ended
