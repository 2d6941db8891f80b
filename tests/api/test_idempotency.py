"""Idempotency-Key on every POST that creates something: a retry gets the first answer and
makes nothing new; the same key with another request is 409; a failed request releases its
key; keys are per tenant."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.api.support import Headers


def _key(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


@pytest.mark.parametrize(
    ("path", "body", "other", "table"),
    [
        ("/v1/agents", {"name": "a1"}, {"name": "a2"}, "agents"),
        ("/v1/agents/{agent}/sessions", {"user_id": "ann"}, {"user_id": "bob"}, "sessions"),
        ("/v1/agents/{agent}/memories", {"content": "Ann likes tea."},
         {"content": "Bob likes coffee."}, "memories"),
        ("/v1/batches", {"agent_id": "{agent}", "items": [{"input": "q"}]},
         {"agent_id": "{agent}", "items": [{"input": "r"}]}, "batches"),
        ("/v1/webhooks", {"url": "https://h.example/a", "events": ["run.failed"]},
         {"url": "https://h.example/b", "events": ["run.failed"]}, "webhooks"),
        ("/v1/mcp-servers", {"name": "s1", "url": "https://m.example/mcp"},
         {"name": "s2", "url": "https://m.example/mcp"}, "mcp_servers"),
    ],
)  # fmt: skip
def test_a_retried_create_returns_the_first_answer_and_makes_nothing_new(
    memory_client: TestClient,
    engine: Engine,
    auth: Headers,
    other_auth: Headers,
    path: str,
    body: dict[str, Any],
    other: dict[str, Any],
    table: str,
) -> None:
    client = memory_client
    agent = client.post("/v1/agents", json={"name": "base"}, headers=auth).json()

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value.replace("{agent}", agent["id"]) if isinstance(value, str) else value

    url, body, other = fill(path), fill(body), fill(other)
    before = _count(engine, table)
    first = client.post(url, json=body, headers=_key(auth, "k-1"))
    assert first.status_code in (200, 201), first.text
    again = client.post(url, json=body, headers=_key(auth, "k-1"))
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    assert _count(engine, table) == before + 1
    clash = client.post(url, json=other, headers=_key(auth, "k-1"))
    assert clash.status_code == 409, clash.text
    assert clash.json()["error"]["param"] == "Idempotency-Key"
    assert _count(engine, table) == before + 1
    # Keys are per tenant: another tenant's same key is its own.
    assert (
        client.post("/v1/agents", json={"name": "x"}, headers=_key(other_auth, "k-1")).status_code
        == 201
    )


def test_a_failed_request_releases_its_key(client: TestClient, auth: Headers) -> None:
    client.post("/v1/agents", json={"name": "taken"}, headers=auth)
    refused = client.post("/v1/agents", json={"name": "taken"}, headers=_key(auth, "k-2"))
    assert refused.status_code == 409
    assert "already exists" in refused.json()["error"]["message"]
    client.patch(
        f"/v1/agents/{client.get('/v1/agents', headers=auth).json()['data'][0]['id']}",
        json={"name": "renamed"},
        headers=auth,
    )
    retried = client.post("/v1/agents", json={"name": "taken"}, headers=_key(auth, "k-2"))
    assert retried.status_code == 201, retried.text
