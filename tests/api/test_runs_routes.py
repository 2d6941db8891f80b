"""Runs over REST: state, steps with their recorded context, cancel, tenant isolation."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.records import CalledTool, PendingCall, StepOutput, Usage
from agents.runs import approvals
from agents.runs import store as run_store
from agents.runs.events import read_events
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
            "approval": None,
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


SCHEMA = {
    "type": "object",
    "properties": {"account": {"type": "string"}, "amount": {"type": "integer"}},
    "required": ["account", "amount"],
}


def _waiting_run(client: TestClient, auth: Headers, session_id: str, engine: Engine) -> str:
    """A run whose worker stopped it for approval of two `transfer` calls."""
    run_id = _start_run(client, auth, session_id)
    support.start(engine, run_id)
    calls = (
        CalledTool("call-1", "transfer", '{"account": "a", "amount": 5}'),
        CalledTool("call-2", "transfer", '{"account": "b", "amount": 7}'),
    )
    with transaction(engine) as session:
        row = run_store.owned(session, uuid.UUID(run_id), support.OWNER)
        run_store.record_step(
            session,
            row,
            StepWrite(
                step=1,
                context=[],
                output=StepOutput(content=None, tool_calls=calls, finish_reason="tool_calls"),
                decision="tools",
                invalid_attempts=0,
                usage=Usage(prompt_tokens=1, completion_tokens=1, cost_usd=0.0),
                model_ms=1.0,
            ),
        )
        pending = [PendingCall(c.id, c.name, c.arguments, SCHEMA) for c in calls]
        approvals.pause(session, row, 1, pending, 600)
    return run_id


def test_a_waiting_run_shows_what_it_needs_and_approvals_resume_it(
    client: TestClient, auth: Headers, session_id: str, engine: Engine, run_queue: RecordingQueue
) -> None:
    run_id = _waiting_run(client, auth, session_id, engine)
    run = client.get(f"/v1/runs/{run_id}", headers=auth).json()
    assert run["status"] == "requires_action"
    action = run["required_action"]
    assert (action["type"], action["step"]) == ("approve_tool_calls", 1)
    assert [c["call_id"] for c in action["calls"]] == ["call-1", "call-2"]
    assert action["calls"][0]["parameters"] == SCHEMA
    sent = len(run_queue.runs)

    url = f"/v1/runs/{run_id}/approvals"
    first = client.post(
        url, json={"decisions": [{"call_id": "call-1", "decision": "approve"}]}, headers=auth
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "requires_action"
    assert [c["call_id"] for c in first.json()["required_action"]["calls"]] == ["call-2"]
    assert len(run_queue.runs) == sent  # still waiting: nothing sent
    edit = {"call_id": "call-2", "decision": "edit", "arguments": {"account": "b", "amount": 1}}
    second = client.post(url, json={"decisions": [edit]}, headers=auth)
    assert second.status_code == 200, second.text
    assert (second.json()["status"], second.json()["required_action"]) == ("queued", None)
    assert run_queue.runs[-1] == uuid.UUID(run_id)
    steps = client.get(f"/v1/runs/{run_id}/steps", headers=auth).json()["data"]
    calls = steps[0]["tool_calls"]
    assert [c["approval"] for c in calls] == ["approved", "approved"]
    assert calls[1]["arguments"] == '{"account": "b", "amount": 1}'
    run = support.load(engine, run_id)
    with transaction(engine) as session:  # the stream would stay open: the run is queued
        types = [e.type for e in read_events(session, run.tenant_id, run.id)]
    assert types.count("tool.approval") == 2
    assert "run.requires_action" in types

    again = client.post(
        url, json={"decisions": [{"call_id": "call-1", "decision": "deny"}]}, headers=auth
    )
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"


@pytest.mark.parametrize(
    ("decision", "param"),
    [
        ({"call_id": "call-1", "decision": "edit", "arguments": {"account": "a"}}, "arguments"),
        (
            {"call_id": "call-1", "decision": "edit", "arguments": {"account": 3, "amount": 1}},
            "arguments",
        ),
        ({"call_id": "call-1", "decision": "edit"}, "decisions"),
        ({"call_id": "call-1", "decision": "approve", "arguments": {}}, "decisions"),
        ({"call_id": "call-1", "decision": "maybe"}, "decision"),
        ({"call_id": "call-1", "decision": "answer", "message": "yes"}, "decision"),
        ({"call_id": "call-1", "decision": "answer"}, "decisions"),
    ],
)
def test_an_edit_that_does_not_fit_or_a_malformed_decision_is_422_and_changes_nothing(
    client: TestClient,
    auth: Headers,
    session_id: str,
    engine: Engine,
    decision: dict[str, object],
    param: str,
) -> None:
    run_id = _waiting_run(client, auth, session_id, engine)
    response = client.post(
        f"/v1/runs/{run_id}/approvals", json={"decisions": [decision]}, headers=auth
    )
    assert response.status_code == 422, response.text
    assert param in (response.json()["error"].get("param") or "")
    run = client.get(f"/v1/runs/{run_id}", headers=auth).json()
    assert len(run["required_action"]["calls"]) == 2


def test_approvals_for_unknown_calls_other_tenants_and_runs_not_waiting(
    client: TestClient, auth: Headers, other_auth: Headers, session_id: str, engine: Engine
) -> None:
    run_id = _waiting_run(client, auth, session_id, engine)
    url = f"/v1/runs/{run_id}/approvals"
    approve = {"decisions": [{"call_id": "call-1", "decision": "approve"}]}
    assert client.post(url, json=approve, headers=other_auth).status_code == 404
    unknown = {"decisions": [{"call_id": "call-9", "decision": "approve"}]}
    assert client.post(url, json=unknown, headers=auth).status_code == 404
    twice = {"decisions": [{"call_id": "call-1", "decision": "approve"}] * 2}
    assert client.post(url, json=twice, headers=auth).status_code == 422
    queued = _start_run(client, auth, session_id, queue=True)
    response = client.post(f"/v1/runs/{queued}/approvals", json=approve, headers=auth)
    assert response.status_code == 409
    assert "not waiting for approval" in response.json()["error"]["message"]
    cancelled = client.post(f"/v1/runs/{run_id}/cancel", headers=auth).json()
    assert cancelled["status"] == "cancelled"
    assert client.post(url, json=approve, headers=auth).status_code == 409


def _listed(client: TestClient, auth: Headers, **params: str | int) -> list[str]:
    response = client.get("/v1/runs", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["data"]]


def test_the_tenants_runs_newest_first_filtered(
    client: TestClient, auth: Headers, other_auth: Headers, agent_id: str, engine: Engine
) -> None:
    def session_of(agent: str, user: str) -> str:
        made = client.post(f"/v1/agents/{agent}/sessions", json={"user_id": user}, headers=auth)
        ident: str = made.json()["id"]
        return ident

    other_agent = client.post("/v1/agents", json={"name": "other"}, headers=auth).json()["id"]
    ann, bob = session_of(agent_id, "ann"), session_of(other_agent, "bob")
    first = _start_run(client, auth, ann)
    support.start(engine, first)
    support.finish(engine, first, output="done")
    second = _start_run(client, auth, ann)  # queued
    third = _start_run(client, auth, bob)
    assert _listed(client, auth) == [third, second, first]
    assert _listed(client, auth, status="succeeded") == [first]
    assert _listed(client, auth, status="queued") == [third, second]
    assert _listed(client, auth, agent_id=agent_id) == [second, first]
    assert _listed(client, auth, user_id="bob") == [third]
    assert _listed(client, auth, user_id="ann", status="queued") == [second]
    assert _listed(client, auth, session_id=bob) == [third]
    assert _listed(client, auth, user_id="nobody") == []
    # Another tenant sees none of them, even naming acme's agent or end user.
    assert _listed(client, other_auth) == []
    assert _listed(client, other_auth, agent_id=agent_id, user_id="ann") == []


def test_runs_are_listed_a_page_at_a_time(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine
) -> None:
    made = []
    for user in ("a", "b", "c"):
        chat = client.post(f"/v1/agents/{agent_id}/sessions", json={"user_id": user}, headers=auth)
        made.append(_start_run(client, auth, chat.json()["id"]))
    page = client.get("/v1/runs", params={"limit": 2}, headers=auth).json()
    assert [run["id"] for run in page["data"]] == made[:0:-1]
    rest = client.get(
        "/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]}, headers=auth
    ).json()
    assert ([run["id"] for run in rest["data"]], rest["next_cursor"]) == ([made[0]], None)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "done"}, "status"),
        ({"agent_id": "not-a-uuid"}, "agent_id"),
        ({"user_id": ""}, "user_id"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_a_bad_runs_filter_is_a_422_naming_it(
    client: TestClient, auth: Headers, params: dict[str, str | int], param: str
) -> None:
    response = client.get("/v1/runs", params=params, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
