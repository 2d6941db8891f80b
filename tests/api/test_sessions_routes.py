"""Sessions and messages over REST: starting runs, busy sessions, Idempotency-Key, wait."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api import support
from tests.api.support import Headers, RecordingQueue


def _post(client: TestClient, session_id: str, auth: Headers, **body: Any) -> Any:
    headers = dict(auth)
    key = body.pop("key", None)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/v1/sessions/{session_id}/messages", json={"content": "hi", **body}, headers=headers
    )


def _param(response: Any) -> str | None:
    param: str | None = response.json()["error"].get("param")
    return param


def test_create_and_read_a_session(client: TestClient, auth: Headers, agent_id: str) -> None:
    body = {"user_id": "alice", "metadata": {"channel": "web"}}
    response = client.post(f"/v1/agents/{agent_id}/sessions", json=body, headers=auth)
    assert response.status_code == 201
    chat = response.json()
    assert chat["agent_id"] == agent_id
    assert chat["user_id"] == "alice"
    assert chat["metadata"] == {"channel": "web"}
    assert client.get(f"/v1/sessions/{chat['id']}", headers=auth).json() == chat


def test_a_session_needs_no_body(client: TestClient, auth: Headers, agent_id: str) -> None:
    response = client.post(f"/v1/agents/{agent_id}/sessions", headers=auth)
    assert response.status_code == 201
    assert response.json()["user_id"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [({"user_id": ""}, "user_id"), ({"user_id": "x" * 257}, "user_id"), ({"x": 1}, "x")],
)
def test_invalid_session_is_422(
    client: TestClient, auth: Headers, agent_id: str, body: dict[str, Any], param: str
) -> None:
    response = client.post(f"/v1/agents/{agent_id}/sessions", json=body, headers=auth)
    assert response.status_code == 422
    assert _param(response) == param


def test_a_message_starts_a_queued_run_and_enqueues_it_once(
    client: TestClient, auth: Headers, session_id: str, agent_id: str, run_queue: RecordingQueue
) -> None:
    response = _post(client, session_id, auth, content="What is 2+2?", metadata={"k": "v"})
    assert response.status_code == 202
    run = response.json()
    assert response.headers["location"] == f"/v1/runs/{run['id']}"
    assert run["status"] == "queued"
    assert run["input"] == "What is 2+2?"
    assert run["session_id"] == session_id
    assert run["agent_id"] == agent_id
    assert run["metadata"] == {"k": "v"}
    assert run["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    assert run["attempts"] == 0
    assert run["cancel_requested"] is False
    assert run_queue.runs == [uuid.UUID(run["id"])]
    messages = client.get(f"/v1/sessions/{session_id}/messages", headers=auth).json()
    assert [(m["role"], m["content"], m["run_id"]) for m in messages["data"]] == [
        ("user", "What is 2+2?", run["id"])
    ]
    runs = client.get(f"/v1/sessions/{session_id}/runs", headers=auth).json()
    assert [r["id"] for r in runs["data"]] == [run["id"]]


def test_busy_session_is_409_unless_queued(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue
) -> None:
    first = _post(client, session_id, auth).json()
    busy = _post(client, session_id, auth, content="again")
    assert busy.status_code == 409
    assert busy.json()["error"]["type"] == "conflict"
    assert first["id"] in busy.json()["error"]["message"]
    queued = _post(client, session_id, auth, content="again", queue=True)
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued"
    # Only the first is sent now; the worker sends the second when the first ends.
    assert run_queue.runs == [uuid.UUID(first["id"])]
    runs = client.get(f"/v1/sessions/{session_id}/runs", headers=auth).json()["data"]
    assert [r["id"] for r in runs] == [queued.json()["id"], first["id"]]


def test_idempotent_retry_returns_the_same_run_and_enqueues_once(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue
) -> None:
    first = _post(client, session_id, auth, key="retry-1")
    again = _post(client, session_id, auth, key="retry-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert run_queue.runs == [uuid.UUID(first.json()["id"])]
    messages = client.get(f"/v1/sessions/{session_id}/messages", headers=auth).json()["data"]
    assert len(messages) == 1


def test_idempotency_key_with_another_body_is_409(
    client: TestClient, auth: Headers, session_id: str
) -> None:
    assert _post(client, session_id, auth, key="k-2", queue=True).status_code == 202
    reused = _post(client, session_id, auth, key="k-2", queue=True, content="different")
    assert reused.status_code == 409
    assert _param(reused) == "Idempotency-Key"


@pytest.mark.parametrize("key", ["x" * 257, "tab\there"])
def test_malformed_idempotency_key_is_422(
    client: TestClient, auth: Headers, session_id: str, key: str
) -> None:
    response = _post(client, session_id, auth, key=key)
    assert response.status_code == 422
    assert _param(response) == "Idempotency-Key"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"content": ""}, "content"),
        ({"content": " \n\t "}, "content"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 301}, "timeout_s"),
        ({"stream": True, "wait": True}, "wait"),
        ({"content": None}, "content"),
        ({"priority": 1}, "priority"),
    ],
)
def test_invalid_message_is_422(
    client: TestClient, auth: Headers, session_id: str, body: dict[str, Any], param: str
) -> None:
    response = _post(client, session_id, auth, **body)
    assert response.status_code == 422
    assert _param(response) == param


def test_malformed_json_is_400_and_oversize_is_413(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue
) -> None:
    url = f"/v1/sessions/{session_id}/messages"
    bad = client.post(url, content=b"{", headers={**auth, "Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request"
    big = client.post(url, json={"content": "x" * 5000}, headers=auth)
    assert big.status_code == 413
    assert run_queue.runs == []


def test_messages_page_by_seq(client: TestClient, auth: Headers, session_id: str) -> None:
    for i in range(3):
        assert _post(client, session_id, auth, content=f"m{i}", queue=True).status_code == 202
    url = f"/v1/sessions/{session_id}/messages"
    page = client.get(url, params={"limit": 2}, headers=auth).json()
    assert [m["content"] for m in page["data"]] == ["m0", "m1"]
    assert page["next_cursor"] == str(page["data"][1]["seq"])
    rest = client.get(url, params={"after_seq": page["next_cursor"]}, headers=auth).json()
    assert [m["content"] for m in rest["data"]] == ["m2"]
    assert rest["next_cursor"] is None
    assert client.get(url, params={"after_seq": -1}, headers=auth).status_code == 422


def test_wait_times_out_with_202(client: TestClient, auth: Headers, session_id: str) -> None:
    started = time.monotonic()
    response = _post(client, session_id, auth, wait=True, timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert 0.5 <= elapsed < 5


def test_wait_returns_the_finished_run(
    client: TestClient, auth: Headers, session_id: str, engine: Engine
) -> None:
    def work() -> None:
        # The worker's side: find the run the POST below created, then run it to the end.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            runs = client.get(f"/v1/sessions/{session_id}/runs", headers=auth).json()["data"]
            if runs:
                support.start(engine, runs[0]["id"])
                time.sleep(0.2)
                support.finish(engine, runs[0]["id"], output="four")
                return
            time.sleep(0.05)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        response = _post(client, session_id, auth, content="2+2?", wait=True, timeout_s=30)
    finally:
        worker.join()
    assert response.status_code == 200
    run = response.json()
    assert (run["status"], run["output"], run["stop_reason"]) == ("succeeded", "four", "answer")
    assert run["finished_at"] is not None
    messages = client.get(f"/v1/sessions/{session_id}/messages", headers=auth).json()["data"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "2+2?"),
        ("assistant", "four"),
    ]


def test_another_tenants_session_is_404_everywhere(
    client: TestClient,
    auth: Headers,
    other_auth: Headers,
    session_id: str,
    run_queue: RecordingQueue,
) -> None:
    base = f"/v1/sessions/{session_id}"
    for path in (base, f"{base}/messages", f"{base}/runs"):
        assert client.get(path, headers=other_auth).status_code == 404
    assert _post(client, session_id, other_auth).status_code == 404
    assert run_queue.runs == []
    assert client.get(base, headers=auth).status_code == 200


@pytest.mark.parametrize("ident", ["nope", str(uuid.uuid4())])
def test_unknown_or_malformed_session_ids_are_404(
    client: TestClient, auth: Headers, ident: str
) -> None:
    base = f"/v1/sessions/{ident}"
    for path in (base, f"{base}/messages", f"{base}/runs"):
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    assert _post(client, ident, auth).status_code == 404
    assert client.post(f"/v1/agents/{ident}/sessions", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"metadata": {"note": "a\u0000b"}}, "metadata"),
        ({"metadata": {"a\u0000": 1}}, "metadata"),
        ({"user_id": "u\u0000"}, "user_id"),
    ],
)
def test_nul_characters_are_422_not_500(
    client: TestClient, auth: Headers, agent_id: str, body: dict[str, Any], param: str
) -> None:
    # Found by the fuzzer: Postgres stores no NUL in text or JSONB, and the insert failed.
    response = client.post(f"/v1/agents/{agent_id}/sessions", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert _param(response) == param


def test_a_message_with_a_nul_is_422(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue
) -> None:
    response = _post(client, session_id, auth, content="hi\u0000")
    assert response.status_code == 422, response.text
    assert _param(response) == "content"
    assert run_queue.runs == []


def test_an_after_seq_past_the_column_is_422_not_500(
    client: TestClient, auth: Headers, session_id: str
) -> None:
    # Found by the fuzzer: a seq over the 8-byte column's range failed the query.
    url = f"/v1/sessions/{session_id}/messages"
    response = client.get(url, params={"after_seq": 2**63}, headers=auth)
    assert response.status_code == 422, response.text
    assert _param(response) == "after_seq"
    assert client.get(url, params={"after_seq": 2**63 - 1}, headers=auth).json()["data"] == []
