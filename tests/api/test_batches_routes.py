"""Batch routes over the real app and database, with a recording queue; runs are moved by hand
the way a worker moves them (tests/api/support.py), followed by the batch's dispatch. The last
test runs a batch end to end: a real worker on Redis and the bundled model."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.batches import lifecycle as batches
from agents.records import RunStatus
from agents.runs import store as run_store
from agents.worker.queue import RunQueue, make_celery
from api.app import create_app
from core.config import Settings
from core.db import transaction
from tests.api.support import OWNER, Headers, RecordingQueue, load, start
from tests.services import WorkerFactory

JSONL = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Room for batches of 1000 items (the shared fixture's body limit is 4 KiB)."""
    return settings.model_copy(update={"max_body_bytes": 2_000_000})


def create(client: TestClient, auth: Headers, agent_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("items", [{"input": f"question {i}"} for i in range(3)])
    response = client.post("/v1/batches", json={"agent_id": agent_id, **body}, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def end(
    engine: Engine,
    queue: RecordingQueue,
    run_id: uuid.UUID,
    status: RunStatus = "succeeded",
    *,
    output: str | None = "done",
    error: dict[str, Any] | None = None,
) -> None:
    """End a claimed batch run as the executor does: finish, then advance its batch."""
    with transaction(engine) as session:
        row = run_store.owned(session, run_id, OWNER)
        row.prompt_tokens, row.completion_tokens, row.cost_usd = 10, 4, 0.5
        run_store.finish(session, row, status, stop_reason="answer", output=output, error=error)
        batch_id = row.batch_id
    assert batch_id is not None
    batches.advance(engine, batch_id, queue.enqueue_run)


def results(client: TestClient, auth: Headers, batch_id: str, **params: Any) -> list[Any]:
    response = client.get(f"/v1/batches/{batch_id}/results", params=params, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_create_from_json_starts_up_to_the_concurrency(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine, run_queue: RecordingQueue
) -> None:
    items = [{"input": f"q{i}", "user_id": f"u{i}", "metadata": {"row": i}} for i in range(5)]
    batch = create(client, auth, agent_id, items=items, concurrency=2, metadata={"job": 1})

    assert batch["status"] == "running"
    assert batch["agent_id"] == agent_id
    assert (batch["concurrency"], batch["max_attempts"]) == (2, 2)
    assert batch["metadata"] == {"job": 1}
    assert batch["counts"] == {
        "pending": 3,
        "queued": 2,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 5,
    }
    assert batch["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    assert batch["finished_at"] is None
    assert len(run_queue.runs) == 2
    first = load(engine, run_queue.runs[0])
    assert (first.input, first.metadata) == ("q0", {"row": 0})

    assert client.get(f"/v1/batches/{batch['id']}", headers=auth).json() == batch
    listed = client.get("/v1/batches", headers=auth).json()
    assert [b["id"] for b in listed["data"]] == [batch["id"]]


def test_create_from_a_jsonl_upload(
    client: TestClient, auth: Headers, agent_id: str, run_queue: RecordingQueue
) -> None:
    lines = [json.dumps({"input": f"q{i}", "metadata": {"row": i}}) for i in range(4)]
    body = "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n"  # blank lines skipped
    response = client.post(
        "/v1/batches",
        params={"agent_id": agent_id, "concurrency": 3},
        content=body,
        headers={**auth, **JSONL},
    )
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["concurrency"] == 3
    assert batch["counts"]["total"] == 4
    assert len(run_queue.runs) == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"input": "fine"}\n{"input": "ok"}\n{"input": oops}\n', "line 3"),
        ('{"input": "fine"}\n{"input": ""}\n', "line 2.input"),
        ('{"input": "fine"}\n{"input": "x", "extra": 1}\n', "line 2.extra"),
        ('["not an object"]\n', "line 1"),
        ("\n\n", "items"),
    ],
)
def test_a_bad_jsonl_line_is_named_and_nothing_is_created(
    client: TestClient,
    auth: Headers,
    agent_id: str,
    run_queue: RecordingQueue,
    body: str,
    param: str,
) -> None:
    response = client.post(
        "/v1/batches", params={"agent_id": agent_id}, content=body, headers={**auth, **JSONL}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert client.get("/v1/batches", headers=auth).json()["data"] == []
    assert run_queue.runs == []


def test_jsonl_needs_its_agent_as_a_query_parameter(client: TestClient, auth: Headers) -> None:
    response = client.post("/v1/batches", content='{"input": "hi"}\n', headers={**auth, **JSONL})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "agent_id"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"items": [{"input": "q"}] * 1001}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"input": "x" * 32_001}]}, "items.0.input"),
        ({"items": [{"input": "   "}]}, "items.0.input"),
        ({"concurrency": 65}, "concurrency"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_attempts": 6}, "max_attempts"),
        ({"agent_id": "not-a-uuid"}, "agent_id"),
        ({"items": [{"input": "q\u0000"}]}, "items.0.input"),  # Postgres stores no NUL
        ({"metadata": {"k": "\u0000"}}, "metadata"),
    ],
)
def test_oversize_and_invalid_batches_are_refused(
    client: TestClient,
    auth: Headers,
    agent_id: str,
    run_queue: RecordingQueue,
    change: dict[str, Any],
    param: str,
) -> None:
    body = {"agent_id": agent_id, "items": [{"input": "q"}], **change}
    response = client.post("/v1/batches", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert run_queue.runs == []


def test_a_jsonl_upload_of_too_many_lines_is_refused(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    body = '{"input": "q"}\n' * 1001
    response = client.post(
        "/v1/batches", params={"agent_id": agent_id}, content=body, headers={**auth, **JSONL}
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "items"


def test_query_options_go_with_jsonl_only(client: TestClient, auth: Headers, agent_id: str) -> None:
    body = {"agent_id": agent_id, "items": [{"input": "q"}]}
    response = client.post("/v1/batches", params={"concurrency": 8}, json=body, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "concurrency"


def test_other_content_types_and_malformed_json_are_refused(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    text = client.post("/v1/batches", content="hi", headers={**auth, "Content-Type": "text/plain"})
    assert text.status_code == 422
    assert text.json()["error"]["param"] == "content-type"
    broken = client.post(
        "/v1/batches", content="{", headers={**auth, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400


def test_counts_usage_and_results_follow_the_runs(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine, run_queue: RecordingQueue
) -> None:
    batch = create(client, auth, agent_id, concurrency=2)
    url = f"/v1/batches/{batch['id']}"
    first, second = run_queue.runs
    start(engine, first)
    assert client.get(url, headers=auth).json()["counts"]["running"] == 1
    assert results(client, auth, batch["id"]) == []

    end(engine, run_queue, first, output="answer 0")
    third = run_queue.runs[-1]
    assert load(engine, third).input == "question 2"
    start(engine, second)
    error = {"type": "configuration_error", "message": "no tool 'x'"}
    end(engine, run_queue, second, "failed", output=None, error=error)
    now = client.get(url, headers=auth).json()
    assert now["counts"] | {"total": 0} == {
        "pending": 0,
        "queued": 1,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
        "total": 0,
    }
    assert now["usage"] == {"prompt_tokens": 20, "completion_tokens": 8, "cost_usd": 1.0}
    lines = results(client, auth, batch["id"])
    assert [(r["position"], r["status"]) for r in lines] == [(0, "succeeded"), (1, "failed")]
    assert lines[0]["output"] == "answer 0"
    assert lines[0]["run_id"] == str(first)
    assert (lines[0]["attempts"], lines[0]["input"]) == (1, "question 0")
    assert lines[0]["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "cost_usd": 0.5}
    assert lines[1]["error"] == error

    start(engine, third)

    def finish_later() -> None:
        time.sleep(1.5)
        end(engine, run_queue, third, output="answer 2")

    finisher = threading.Thread(target=finish_later)
    finisher.start()
    waited = results(client, auth, batch["id"], wait="true")  # open until the batch ends
    finisher.join()
    assert [r["position"] for r in waited] == [0, 1, 2]
    done = client.get(url, headers=auth).json()
    assert done["status"] == "completed"
    assert done["finished_at"] is not None


def test_cancel_stops_the_batch(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine, run_queue: RecordingQueue
) -> None:
    batch = create(client, auth, agent_id, concurrency=2)
    running, queued = run_queue.runs
    start(engine, running)

    response = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth)
    assert response.status_code == 200
    cancelled = response.json()
    assert (cancelled["status"], cancelled["cancel_requested"]) == ("running", True)
    assert (cancelled["counts"]["running"], cancelled["counts"]["cancelled"]) == (1, 2)
    assert load(engine, queued).status == "cancelled"
    assert load(engine, running).cancel_requested

    end(engine, run_queue, running, "cancelled", output=None)
    done = client.get(f"/v1/batches/{batch['id']}", headers=auth).json()
    assert done["status"] == "cancelled"
    assert done["counts"]["cancelled"] == 3
    assert len(run_queue.runs) == 2  # nothing started after the cancel
    again = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth)
    assert again.json()["status"] == "cancelled"
    assert [r["status"] for r in results(client, auth, batch["id"])] == ["cancelled"] * 3


def test_cancelling_one_item_run_admits_the_next_item_at_once(
    client: TestClient, auth: Headers, agent_id: str, run_queue: RecordingQueue
) -> None:
    batch = create(client, auth, agent_id, concurrency=2)
    first, second = run_queue.runs
    response = client.post(f"/v1/runs/{second}/cancel", headers=auth)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["batch_id"] == batch["id"]
    assert len(run_queue.runs) == 3  # the third item took the freed slot, no sweeper needed
    counts = client.get(f"/v1/batches/{batch['id']}", headers=auth).json()["counts"]
    assert (counts["cancelled"], counts["pending"]) == (1, 0)
    assert first in run_queue.runs


def test_another_tenant_sees_nothing(
    client: TestClient, auth: Headers, other_auth: Headers, agent_id: str
) -> None:
    batch = create(client, auth, agent_id)
    for method, path in [
        ("GET", f"/v1/batches/{batch['id']}"),
        ("GET", f"/v1/batches/{batch['id']}/results"),
        ("POST", f"/v1/batches/{batch['id']}/cancel"),
        ("GET", "/v1/batches/not-a-uuid"),
    ]:
        response = client.request(method, path, headers=other_auth)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["type"] == "not_found"
    assert client.get("/v1/batches", headers=other_auth).json()["data"] == []
    foreign = client.post(
        "/v1/batches", json={"agent_id": agent_id, "items": [{"input": "q"}]}, headers=other_auth
    )
    assert foreign.status_code == 404
    assert (
        client.get(f"/v1/batches/{batch['id']}", headers=auth).json()["cancel_requested"] is False
    )


def test_batches_list_newest_first_in_pages(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    made = [create(client, auth, agent_id, items=[{"input": "q"}])["id"] for _ in range(3)]
    first = client.get("/v1/batches", params={"limit": 2}, headers=auth).json()
    assert [b["id"] for b in first["data"]] == made[::-1][:2]
    rest = client.get(
        "/v1/batches", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [b["id"] for b in rest["data"]] == made[:1]
    assert rest["next_cursor"] is None


@pytest.fixture
def live(
    settings: Settings,
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
) -> Iterator[TestClient]:
    """The app sending runs to a real worker over Redis, the bundled model answering."""
    start_worker(
        {
            "AGENTMILL_DATABASE_URL": database_url,
            "AGENTMILL_BROKER_URL": redis_url,
            "AGENTMILL_INFERENCE_URL": inference_url,
            "AGENTMILL_AGENT_MAX_OUTPUT_TOKENS": "48",
        }
    )
    producer = settings.model_copy(update={"broker_url": redis_url})
    queue = RunQueue(make_celery(producer, database_url))
    with TestClient(create_app(producer, engine, run_queue=queue)) as client:
        yield client


@pytest.mark.timeout(400)
def test_a_batch_runs_to_completion_on_a_real_worker(live: TestClient, auth: Headers) -> None:
    agent = live.post(
        "/v1/agents",
        json={
            "name": "batcher",
            "instructions": "Answer in one short sentence.",
            "max_steps": 2,
            "memory": {"extract_facts": False, "save_episodes": False, "recall_k": 0},
        },
        headers=auth,
    ).json()
    questions = ["Say hello.", "Name a colour.", "Name a fruit.", "Say goodbye."]
    batch = create(live, auth, agent["id"], items=[{"input": q} for q in questions], concurrency=2)

    deadline = time.monotonic() + 300
    while True:
        now = live.get(f"/v1/batches/{batch['id']}", headers=auth).json()
        assert now["counts"]["queued"] + now["counts"]["running"] <= 2
        if now["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert now["status"] == "completed", now
    assert now["counts"]["succeeded"] == 4, now
    assert now["usage"]["completion_tokens"] > 0

    lines = results(live, auth, batch["id"])
    assert len(lines) == 4
    assert [r["input"] for r in lines] == questions
    assert all(r["status"] == "succeeded" and r["output"] for r in lines)
