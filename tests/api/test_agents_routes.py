"""Agents over REST: CRUD, validation, pagination, tenant isolation, on the real database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from core.config import ModelRoute, Settings
from tests.api.support import Headers, RecordingQueue


def _error(response: Any, status: int, param: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    if param is not None:
        assert body["error"].get("param") == param, body
    error: dict[str, str] = body["error"]
    return error


def test_create_applies_defaults_and_reads_back(client: TestClient, auth: Headers) -> None:
    response = client.post("/v1/agents", json={"name": "a1"}, headers=auth)
    assert response.status_code == 201
    agent = response.json()
    assert agent["model"] == "local"
    assert agent["tools"] == []
    assert agent["max_steps"] == 8
    assert agent["temperature"] is None
    assert agent["memory"] == {
        "recall_k": 5,
        "blocks": None,
        "history_messages": 20,
        "save_episodes": True,
        "extract_facts": True,
        "shared_blocks_writable": False,
    }
    fetched = client.get(f"/v1/agents/{agent['id']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json() == agent


def test_create_keeps_every_field(client: TestClient, auth: Headers) -> None:
    body = {
        "name": "full",
        "instructions": "Be brief.",
        "model": "local",
        "tools": ["calculator", "current_time"],
        "memory": {"recall_k": 0, "blocks": ["persona", "human"], "extract_facts": False},
        "max_steps": 3,
        "temperature": 0.2,
        "metadata": {"team": "x", "n": [1, 2]},
    }
    agent = client.post("/v1/agents", json=body, headers=auth).json()
    assert {k: agent[k] for k in ("instructions", "tools", "max_steps", "temperature")} == {
        "instructions": "Be brief.",
        "tools": ["calculator", "current_time"],
        "max_steps": 3,
        "temperature": 0.2,
    }
    assert agent["memory"]["blocks"] == ["persona", "human"]
    assert agent["memory"]["extract_facts"] is False
    assert agent["memory"]["history_messages"] == 20
    assert agent["metadata"] == {"team": "x", "n": [1, 2]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "a", "tools": ["has space"]}, "tools.0"),
        ({"name": "a", "tools": ["calculator", "calculator"]}, "tools"),
        ({"name": "a", "memory": {"recall_k": 51}}, "memory.recall_k"),
        ({"name": "a", "memory": {"history_messages": -1}}, "memory.history_messages"),
        ({"name": "a", "memory": {"blocks": ["Bad-Label"]}}, "memory.blocks.0"),
        ({"name": "a", "max_steps": 0}, "max_steps"),
        ({"name": "a", "max_steps": 51}, "max_steps"),
        ({"name": "a", "temperature": 2.5}, "temperature"),
        ({"name": "a", "metadata": []}, "metadata"),
        ({"name": "a", "unknown": 1}, "unknown"),
        ({"name": "a", "model": "gpt-99"}, "model"),
        ({"name": "a\u0000"}, "name"),  # found by the fuzzer (Postgres stores no NUL): was 500
        ({"name": "a", "metadata": {"k": ["\u0000"]}}, "metadata"),
    ],
)
def test_invalid_create_is_422_naming_the_field(
    client: TestClient, auth: Headers, body: dict[str, Any], param: str
) -> None:
    error = _error(client.post("/v1/agents", json=body, headers=auth), 422, param)
    assert error["type"] == "validation_error"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_metadata_is_422_not_500(client: TestClient, auth: Headers, number: str) -> None:
    # Python's JSON reads these (1e400 as an infinity); JSONB stores none, and the insert failed.
    body = f'{{"name": "a", "metadata": {{"k": [{number}]}}}}'
    headers = {**auth, "Content-Type": "application/json"}
    _error(client.post("/v1/agents", content=body, headers=headers), 422, "metadata")


def test_long_instructions_are_422(
    # the fixture's app takes 4 KiB bodies; this needs a roomier one
    settings: Settings,
    engine: Engine,
    run_queue: RecordingQueue,
    auth: Headers,
) -> None:
    roomy = settings.model_copy(update={"max_body_bytes": 100_000})
    with TestClient(create_app(roomy, engine, run_queue=run_queue)) as client:
        body = {"name": "a", "instructions": "x" * 20_001}
        _error(client.post("/v1/agents", json=body, headers=auth), 422, "instructions")
        body["instructions"] = "x" * 20_000
        assert client.post("/v1/agents", json=body, headers=auth).status_code == 201


def test_model_must_be_a_configured_alias(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, auth: Headers
) -> None:
    routed = settings.model_copy(update={"models": {"mini": ModelRoute(model="openai/gpt-4o")}})
    with TestClient(create_app(routed, engine, run_queue=run_queue)) as client:
        assert client.post(
            "/v1/agents", json={"name": "a", "model": "mini"}, headers=auth
        ).is_success
        error = _error(
            client.post("/v1/agents", json={"name": "b", "model": "maxi"}, headers=auth),
            422,
            "model",
        )
        assert "local" in error["message"]
        assert "mini" in error["message"]


def test_duplicate_name_is_409(client: TestClient, auth: Headers, other_auth: Headers) -> None:
    assert client.post("/v1/agents", json={"name": "same"}, headers=auth).status_code == 201
    _error(client.post("/v1/agents", json={"name": "same"}, headers=auth), 409, "name")
    # Names are unique per tenant only.
    assert client.post("/v1/agents", json={"name": "same"}, headers=other_auth).status_code == 201


def test_list_pages_with_an_opaque_cursor(client: TestClient, auth: Headers) -> None:
    created = [
        client.post("/v1/agents", json={"name": f"agent-{i}"}, headers=auth).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/agents", params=params, headers=auth).json()
        pages += 1
        assert len(page["data"]) <= 2
        seen += [agent["id"] for agent in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    assert pages == 3
    whole = client.get("/v1/agents", headers=auth).json()
    assert [a["id"] for a in whole["data"]] == created
    assert whole["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "param"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
def test_bad_list_parameters_are_422(
    client: TestClient, auth: Headers, params: dict[str, Any], param: str
) -> None:
    _error(client.get("/v1/agents", params=params, headers=auth), 422, param)


def test_patch_changes_only_the_fields_sent(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    before = client.get(f"/v1/agents/{agent_id}", headers=auth).json()
    patch = {"instructions": "New.", "memory": {"recall_k": 2}, "temperature": 0.7}
    response = client.patch(f"/v1/agents/{agent_id}", json=patch, headers=auth)
    assert response.status_code == 200
    after = response.json()
    assert after["instructions"] == "New."
    assert after["temperature"] == 0.7
    assert after["memory"] == {**before["memory"], "recall_k": 2}
    unchanged = ("name", "model", "tools", "max_steps", "metadata", "created_at")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["updated_at"] > before["updated_at"]
    # temperature may go back to null (the model's default); an empty patch changes nothing
    nulled = client.patch(f"/v1/agents/{agent_id}", json={"temperature": None}, headers=auth)
    assert nulled.json()["temperature"] is None
    same = client.patch(f"/v1/agents/{agent_id}", json={}, headers=auth).json()
    assert same["instructions"] == "New."


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"name": None}, "name"),
        ({"tools": None}, "tools"),
        ({"max_steps": 99}, "max_steps"),
        ({"memory": {"recall_k": None}}, "memory.recall_k"),
        ({"model": "nope"}, "model"),
    ],
)
def test_invalid_patch_is_422(
    client: TestClient, auth: Headers, agent_id: str, patch: dict[str, Any], param: str
) -> None:
    _error(client.patch(f"/v1/agents/{agent_id}", json=patch, headers=auth), 422, param)


def test_patch_to_a_taken_name_is_409(client: TestClient, auth: Headers, agent_id: str) -> None:
    client.post("/v1/agents", json={"name": "taken"}, headers=auth)
    _error(client.patch(f"/v1/agents/{agent_id}", json={"name": "taken"}, headers=auth), 409)


def test_delete_then_404(client: TestClient, auth: Headers, agent_id: str) -> None:
    assert client.delete(f"/v1/agents/{agent_id}", headers=auth).status_code == 204
    _error(client.get(f"/v1/agents/{agent_id}", headers=auth), 404)
    _error(client.delete(f"/v1/agents/{agent_id}", headers=auth), 404)


def test_delete_with_an_active_run_is_409(
    client: TestClient, auth: Headers, agent_id: str, session_id: str
) -> None:
    posted = client.post(
        f"/v1/sessions/{session_id}/messages", json={"content": "hi"}, headers=auth
    )
    assert posted.status_code == 202
    _error(client.delete(f"/v1/agents/{agent_id}", headers=auth), 409)
    run_id = posted.json()["id"]
    assert client.post(f"/v1/runs/{run_id}/cancel", headers=auth).json()["status"] == "cancelled"
    assert client.delete(f"/v1/agents/{agent_id}", headers=auth).status_code == 204
    _error(client.get(f"/v1/sessions/{session_id}", headers=auth), 404)
    _error(client.get(f"/v1/runs/{run_id}", headers=auth), 404)


def test_another_tenants_agent_is_404_everywhere(
    client: TestClient, auth: Headers, other_auth: Headers, agent_id: str
) -> None:
    url = f"/v1/agents/{agent_id}"
    _error(client.get(url, headers=other_auth), 404)
    _error(client.patch(url, json={"instructions": "mine"}, headers=other_auth), 404)
    _error(client.delete(url, headers=other_auth), 404)
    _error(client.post(f"{url}/sessions", json={}, headers=other_auth), 404)
    assert client.get("/v1/agents", headers=other_auth).json() == {"data": [], "next_cursor": None}
    assert client.get(url, headers=auth).json()["instructions"] == ""


@pytest.mark.parametrize("ident", ["not-a-uuid", "123", "00000000-0000-0000-0000-000000000000"])
def test_unknown_or_malformed_ids_are_404(client: TestClient, auth: Headers, ident: str) -> None:
    _error(client.get(f"/v1/agents/{ident}", headers=auth), 404)
    _error(client.patch(f"/v1/agents/{ident}", json={}, headers=auth), 404)
    _error(client.delete(f"/v1/agents/{ident}", headers=auth), 404)


def test_routes_need_a_key(client: TestClient, agent_id: str) -> None:
    _error(client.get("/v1/agents"), 401)
    _error(client.get(f"/v1/agents/{agent_id}"), 401)
    _error(client.post("/v1/agents", json={"name": "x"}), 401)


def test_malformed_json_is_400_and_oversize_is_413(client: TestClient, auth: Headers) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    error = _error(client.post("/v1/agents", content=b'{"name": ', headers=headers), 400)
    assert "not valid JSON" in error["message"]
    big = {"name": "big", "instructions": "x" * 5000}
    _error(client.post("/v1/agents", json=big, headers=auth), 413)
