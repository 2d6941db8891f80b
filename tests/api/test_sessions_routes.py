"""Sessions and messages over REST: starting runs, busy sessions, Idempotency-Key, wait."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.runs.events import MessageDelta
from api.schemas.common import encode_cursor
from api.schemas.sessions import MAX_MESSAGE_SEQ
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
    assert page["next_cursor"] == encode_cursor(page["data"][1]["seq"])
    rest = client.get(url, params={"cursor": page["next_cursor"]}, headers=auth).json()
    assert [m["content"] for m in rest["data"]] == ["m2"]
    assert rest["next_cursor"] is None
    since = client.get(url, params={"after_seq": page["data"][0]["seq"]}, headers=auth).json()
    assert [m["content"] for m in since["data"]] == ["m1", "m2"]
    assert client.get(url, params={"after_seq": -1}, headers=auth).status_code == 422
    time_cursor = encode_cursor((datetime.now(UTC), uuid.uuid4()))
    for cursor in ("7", time_cursor, encode_cursor(MAX_MESSAGE_SEQ + 1)):
        response = client.get(url, params={"cursor": cursor}, headers=auth)
        assert response.status_code == 422
        assert _param(response) == "cursor"


def test_session_runs_page_newest_first(client: TestClient, auth: Headers, session_id: str) -> None:
    for i in range(3):
        assert _post(client, session_id, auth, content=f"m{i}", queue=True).status_code == 202
    url = f"/v1/sessions/{session_id}/runs"
    first = client.get(url, params={"limit": 2}, headers=auth).json()
    assert first["next_cursor"] is not None
    second = client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth)
    assert second.json()["next_cursor"] is None
    ids = [run["id"] for run in [*first["data"], *second.json()["data"]]]
    whole = client.get(url, headers=auth).json()
    assert ids == [run["id"] for run in whole["data"]]
    assert len(set(ids)) == 3


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


# -- listing an agent's sessions, deleting one ------------------------------------------------


def _new_session(client: TestClient, auth: Headers, agent_id: str, user: str | None) -> str:
    body = {"user_id": user} if user is not None else {}
    response = client.post(f"/v1/agents/{agent_id}/sessions", json=body, headers=auth)
    assert response.status_code == 201, response.text
    ident: str = response.json()["id"]
    return ident


def _walk(client: TestClient, auth: Headers, path: str, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=auth)
        assert response.status_code == 200, response.text
        pages.append([s["id"] for s in response.json()["data"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


def test_an_agents_sessions_page_newest_first_and_filter_by_user(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    made = [_new_session(client, auth, agent_id, u) for u in ("u1", "u2", "u1", None, "u1")]
    path = f"/v1/agents/{agent_id}/sessions"
    pages = _walk(client, auth, path, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s for p in pages for s in p] == made[::-1]
    mine = _walk(client, auth, path, limit=2, user_id="u1")
    assert [s for p in mine for s in p] == [made[4], made[2], made[0]]
    # A session made after the first page does not shift the later ones.
    first = client.get(path, params={"limit": 2}, headers=auth).json()
    _new_session(client, auth, agent_id, "u1")
    second = client.get(path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth)
    assert [s["id"] for s in second.json()["data"]] == [made[2], made[1]]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, "cursor"),  # base64 of ["x", "y"]
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"user_id": ""}, "user_id"),
        ({"offset": 10**30}, "offset"),
    ],
)
def test_bad_session_list_parameters_are_422(
    client: TestClient, auth: Headers, agent_id: str, params: dict[str, Any], param: str
) -> None:
    response = client.get(f"/v1/agents/{agent_id}/sessions", params=params, headers=auth)
    assert response.status_code == 422, response.text
    assert _param(response) == param


def test_listing_sessions_of_an_unknown_or_foreign_agent_is_404(
    client: TestClient, auth: Headers, other_auth: Headers, agent_id: str
) -> None:
    for path, headers in (
        (f"/v1/agents/{agent_id}/sessions", other_auth),
        (f"/v1/agents/{uuid.uuid4()}/sessions", auth),
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 404
        assert set(response.json()) == {"error"}


def test_deleting_a_session_removes_everything_under_it_and_counts_it(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine
) -> None:
    doomed = _new_session(client, auth, agent_id, "u1")
    kept = _new_session(client, auth, agent_id, "u1")
    runs = []
    for sid in (doomed, kept):
        run = _post(client, sid, auth, content=f"hello from {sid}").json()
        support.start(engine, run["id"])
        support.event(engine, run["id"], MessageDelta(step=1, attempt=1, delta="he"))
        support.finish(engine, run["id"], output=f"answer in {sid}")
        runs.append(run["id"])
        memory = {"content": f"episode of {sid}", "session_id": sid, "kind": "episodic"}
        written = client.post(f"/v1/agents/{agent_id}/memories", json=memory, headers=auth)
        assert written.status_code == 201, written.text

    response = client.delete(f"/v1/sessions/{doomed}", headers=auth)
    assert response.status_code == 200, response.text
    erased = response.json()["erased"]
    assert erased["sessions"] == 1
    assert erased["messages"] == 2  # the user's message and the answer
    assert erased["runs"] == 1
    assert erased["run_events"] >= 3  # started, the delta, the end
    assert erased["memories"] == 1
    assert erased["blocks"] == erased["batch_items"] == 0

    assert client.get(f"/v1/sessions/{doomed}", headers=auth).status_code == 404
    assert client.get(f"/v1/runs/{runs[0]}", headers=auth).status_code == 404
    assert client.delete(f"/v1/sessions/{doomed}", headers=auth).status_code == 404
    # The other session of the same user keeps its messages, run and memory.
    assert len(client.get(f"/v1/sessions/{kept}/messages", headers=auth).json()["data"]) == 2
    assert client.get(f"/v1/runs/{runs[1]}", headers=auth).status_code == 200
    listed = client.get(
        f"/v1/agents/{agent_id}/memories", params={"user_id": "u1"}, headers=auth
    ).json()
    assert [m["content"] for m in listed["data"]] == [f"episode of {kept}"]
    # A memory written later for the deleted session is refused (its tombstone).
    late = {"content": "late episode", "session_id": doomed}
    response = client.post(f"/v1/agents/{agent_id}/memories", json=late, headers=auth)
    assert response.status_code == 404


def test_another_tenant_cannot_delete_a_session(
    client: TestClient, auth: Headers, other_auth: Headers, session_id: str
) -> None:
    response = client.delete(f"/v1/sessions/{session_id}", headers=other_auth)
    assert response.status_code == 404
    assert client.get(f"/v1/sessions/{session_id}", headers=auth).status_code == 200
