"""End to end over REST: the real API, a real Celery worker on Redis, the real inference
server with the bundled model, the real embedded Postgres. A session of several messages with
a tool call streamed over SSE, and a memory recalled into a new session of the same user."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from agents.worker.queue import RunQueue, make_celery
from api.app import create_app
from core.config import Settings
from tests.services import WorkerFactory

pytestmark = pytest.mark.timeout(400)

Headers = dict[str, str]


def sse_events(lines: Iterator[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(id, event, data) of each SSE message; comments are skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "event" in fields:
                yield int(fields["id"]), fields["event"], json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


@pytest.fixture
def live(
    settings: Settings,
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
) -> Iterator[TestClient]:
    """The app sending runs to a real worker over Redis."""
    start_worker(
        {
            "AGENTMILL_DATABASE_URL": database_url,
            "AGENTMILL_BROKER_URL": redis_url,
            "AGENTMILL_INFERENCE_URL": inference_url,
        }
    )
    producer = settings.model_copy(update={"broker_url": redis_url})
    queue = RunQueue(make_celery(producer, database_url))
    app = create_app(producer, engine, run_queue=queue)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_streamed_session_with_tools_and_memory_across_sessions(
    live: TestClient, api_key: str
) -> None:
    auth: Headers = {"Authorization": f"Bearer {api_key}"}
    agent = live.post(
        "/v1/agents",
        json={
            "name": "e2e",
            "instructions": "You are a helpful assistant. Use the calculator for arithmetic.",
            "tools": ["calculator"],
            "tool_choice": "required",
            "max_steps": 4,
            "memory": {"extract_facts": False},
        },
        headers=auth,
    ).json()
    first = live.post(
        f"/v1/agents/{agent['id']}/sessions", json={"user_id": "ada"}, headers=auth
    ).json()

    body = {"content": "Please compute 12*7 with the calculator.", "stream": True}
    with live.stream(
        "POST", f"/v1/sessions/{first['id']}/messages", json=body, headers=auth
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response.iter_lines()))
    ids = [ident for ident, _, _ in events]
    kinds = [kind for _, kind, _ in events]
    assert ids == list(range(1, len(events) + 1))
    assert kinds[0] == "run.queued"
    assert "tool.call" in kinds
    assert kinds.index("tool.call") < kinds.index("tool.result")
    assert kinds[-1] in ("run.succeeded", "run.incomplete")
    run_id = events[0][2]["run_id"]
    assert all(data["run_id"] == run_id for _, _, data in events)
    run = live.get(f"/v1/runs/{run_id}", headers=auth).json()
    assert run["status"] == kinds[-1].removeprefix("run.")

    said = live.post(
        f"/v1/sessions/{first['id']}/messages",
        json={"content": "My cat is called Biscuit.", "wait": True, "timeout_s": 120},
        headers=auth,
    )
    assert said.status_code == 200, said.text
    assert said.json()["status"] in ("succeeded", "incomplete")

    second = live.post(
        f"/v1/agents/{agent['id']}/sessions", json={"user_id": "ada"}, headers=auth
    ).json()
    asked = live.post(
        f"/v1/sessions/{second['id']}/messages",
        json={"content": "What is my cat called?", "wait": True, "timeout_s": 120},
        headers=auth,
    )
    assert asked.status_code == 200, asked.text
    steps = live.get(f"/v1/runs/{asked.json()['id']}/steps", headers=auth).json()["data"]
    system = steps[0]["context"][0]["content"]
    assert "My cat is called Biscuit." in system  # recalled from the first session

    history = live.get(f"/v1/sessions/{first['id']}/messages", headers=auth).json()["data"]
    users = [m["content"] for m in history if m["role"] == "user"]
    assert users == [body["content"], "My cat is called Biscuit."]
    answers = [m for m in history if m["role"] == "assistant"]
    assert len(answers) == [run["status"], said.json()["status"]].count("succeeded")


def test_an_approval_round_trip_over_rest_with_the_bundled_model(
    live: TestClient, api_key: str
) -> None:
    auth: Headers = {"Authorization": f"Bearer {api_key}"}
    agent = live.post(
        "/v1/agents",
        json={
            "name": "careful",
            "instructions": "Use the calculator for arithmetic.",
            "tools": ["calculator"],
            "tool_choice": "required",
            "approval": {"tools": ["calculator"], "timeout_s": 600},
            "max_steps": 3,
            "memory": {"extract_facts": False, "save_episodes": False},
        },
        headers=auth,
    ).json()
    assert agent["approval"] == {"tools": ["calculator"], "timeout_s": 600}
    chat = live.post(f"/v1/agents/{agent['id']}/sessions", headers=auth).json()

    body = {"content": "Compute 6*7 with the calculator.", "wait": True, "timeout_s": 120}
    waited = live.post(f"/v1/sessions/{chat['id']}/messages", json=body, headers=auth)
    assert waited.status_code == 200, waited.text
    run = waited.json()
    assert run["status"] == "requires_action", run
    (call,) = run["required_action"]["calls"][:1]
    assert call["name"] == "calculator"
    assert call["parameters"]["properties"]["expression"]["type"] == "string"
    # Arguments the model would not write itself (when it wrote "6*7", an edit to "6*7" changed
    # nothing, and the result rightly said so), and still 42.
    edited = {"expression": "(6 * 7) * 1"}
    edit = {"call_id": call["call_id"], "decision": "edit", "arguments": edited}
    others = [
        {"call_id": c["call_id"], "decision": "deny"} for c in run["required_action"]["calls"][1:]
    ]
    decided = live.post(
        f"/v1/runs/{run['id']}/approvals", json={"decisions": [edit, *others]}, headers=auth
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "queued"

    # The small model may call the calculator again in a later step, which waits again:
    # deny those, so the run ends within its max_steps.
    deadline = time.monotonic() + 180
    while (now := live.get(f"/v1/runs/{run['id']}", headers=auth).json())["finished_at"] is None:
        assert time.monotonic() < deadline, now
        if now["status"] == "requires_action":
            denials = [
                {"call_id": c["call_id"], "decision": "deny"}
                for c in now["required_action"]["calls"]
            ]
            live.post(f"/v1/runs/{run['id']}/approvals", json={"decisions": denials}, headers=auth)
        time.sleep(0.2)
    with live.stream("GET", f"/v1/runs/{run['id']}/events", headers=auth) as response:
        events = list(sse_events(response.iter_lines()))
    kinds = [kind for _, kind, _ in events]
    assert kinds.index("run.requires_action") < kinds.index("tool.approval")
    assert kinds.index("tool.approval") < kinds.index("tool.result")
    assert kinds[-1] in ("run.succeeded", "run.incomplete")
    first = (run["required_action"]["step"], call["call_id"])
    (result,) = [
        d for _, k, d in events if k == "tool.result" and (d["step"], d["call_id"]) == first
    ]
    assert result["result"].startswith("42")
    assert "changed the arguments" in result["result"]
    again = live.post(f"/v1/runs/{run['id']}/approvals", json={"decisions": [edit]}, headers=auth)
    assert again.status_code == 409


def test_an_agent_calls_an_mcp_server_through_a_real_worker_with_the_bundled_model(
    settings: Settings,
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
    mcp_http_url: str,
    api_key: str,
) -> None:
    """The tests' MCP server over streamable HTTP (a real process), listed and called by a
    real worker; the bundled model must call its tool (tool_choice required)."""
    allowed = '["127.0.0.1"]'
    start_worker(
        {
            "AGENTMILL_DATABASE_URL": database_url,
            "AGENTMILL_BROKER_URL": redis_url,
            "AGENTMILL_INFERENCE_URL": inference_url,
            "AGENTMILL_MCP_ALLOWED_HOSTS": allowed,
            "AGENTMILL_SECRET_KEY": "e2e-secret",
        }
    )
    producer = settings.model_copy(
        update={
            "broker_url": redis_url,
            "mcp_allowed_hosts": ("127.0.0.1",),
            "secret_key": SecretStr("e2e-secret"),
        }
    )
    app = create_app(producer, engine, run_queue=RunQueue(make_celery(producer, database_url)))
    auth: Headers = {"Authorization": f"Bearer {api_key}"}
    with TestClient(app, raise_server_exceptions=False) as live:
        server = live.post(
            "/v1/mcp-servers",
            json={"name": "weather", "url": mcp_http_url, "headers": {"X-Api-Key": "k"}},
            headers=auth,
        )
        assert server.status_code == 201, server.text
        agent = live.post(
            "/v1/agents",
            json={
                "name": "forecaster",
                "instructions": "Answer weather questions with the forecast tool.",
                "mcp_servers": [{"server": "weather", "tools": ["get_forecast"]}],
                "tool_choice": "required",
                "max_steps": 3,
                "memory": {"extract_facts": False, "save_episodes": False},
            },
            headers=auth,
        ).json()
        chat = live.post(f"/v1/agents/{agent['id']}/sessions", headers=auth).json()
        body = {"content": "What is the weather in Paris?", "wait": True, "timeout_s": 180}
        done = live.post(f"/v1/sessions/{chat['id']}/messages", json=body, headers=auth)
        assert done.status_code == 200, done.text
        run = done.json()
        assert run["status"] in ("succeeded", "incomplete"), run
        steps = live.get(f"/v1/runs/{run['id']}/steps", headers=auth).json()["data"]
        calls = [call for step in steps for call in step["tool_calls"]]
        assert calls, steps
        assert calls[0]["name"] == "weather__get_forecast"
        assert calls[0]["result"].startswith("Sunny in "), calls[0]
        assert not calls[0]["is_error"]
        listed = live.get(f"/v1/mcp-servers/{server.json()['id']}", headers=auth).json()
        assert listed["last_error"] is None
        assert "weather__get_forecast" in {t["exposed"] for t in listed["tools"]}
