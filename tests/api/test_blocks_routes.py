"""Core memory blocks over REST, on the real database: create, replace, read, list, history,
delete, per-user blocks, limits, bad input and tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import Headers


@pytest.fixture
def client(memory_client: TestClient) -> TestClient:
    """The app with the real-embedder memory store (agent_id uses it too)."""
    return memory_client


def _error(response: Any, status: int, param: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    if param is not None:
        assert body["error"].get("param") == param, body
    error: dict[str, str] = body["error"]
    return error


def _put(client: TestClient, auth: Headers, agent_id: str, label: str, **body: Any) -> Any:
    response = client.put(f"/v1/agents/{agent_id}/blocks/{label}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_create_replace_read_and_history(client: TestClient, auth: Headers, agent_id: str) -> None:
    url = f"/v1/agents/{agent_id}/blocks/persona"
    created = _put(client, auth, agent_id, "persona", value="I am terse.")
    assert created["label"] == "persona"
    assert created["value"] == "I am terse."
    assert created["version"] == 1
    assert created["user_id"] is None
    assert created["char_limit"] == 5000  # AGENTMILL_MEMORY_BLOCK_CHAR_LIMIT's default
    changed = _put(client, auth, agent_id, "persona", value="I am friendly.", char_limit=100)
    assert (changed["version"], changed["char_limit"]) == (2, 100)
    # the same value again is not a new version
    assert _put(client, auth, agent_id, "persona", value="I am friendly.")["version"] == 2
    read = client.get(url, headers=auth)
    assert read.status_code == 200
    assert read.json() == changed
    history = client.get(f"{url}/history", headers=auth)
    assert history.status_code == 200
    entries = history.json()["data"]
    assert [(e["version"], e["value"], e["char_limit"]) for e in entries] == [
        (1, "I am terse.", 5000),
        (2, "I am friendly.", 100),
    ]
    assert {e["author"] for e in entries} == {"api"}


def test_user_blocks_are_apart_from_the_agents(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    _put(client, auth, agent_id, "persona", value="I am helpful.")
    _put(client, auth, agent_id, "human", value="Name: Ann", user_id="ann")
    _put(client, auth, agent_id, "human", value="Name: Bob", user_id="bob")
    url = f"/v1/agents/{agent_id}/blocks"

    def listed(**params: Any) -> list[tuple[str, str | None, str]]:
        response = client.get(url, params=params, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return [(b["label"], b["user_id"], b["value"]) for b in response.json()["data"]]

    assert listed() == [("persona", None, "I am helpful.")]
    assert listed(user_id="ann") == [
        ("human", "ann", "Name: Ann"),
        ("persona", None, "I am helpful."),
    ]
    ann = client.get(f"{url}/human", params={"user_id": "ann"}, headers=auth)
    assert ann.json()["value"] == "Name: Ann"
    # without user_id the agent's own "human" block is meant, and there is none
    _error(client.get(f"{url}/human", headers=auth), 404)
    assert client.delete(f"{url}/human", params={"user_id": "ann"}, headers=auth).status_code == 204
    _error(client.get(f"{url}/human", params={"user_id": "ann"}, headers=auth), 404)
    _error(client.get(f"{url}/human/history", params={"user_id": "ann"}, headers=auth), 404)
    assert listed(user_id="bob") == [
        ("human", "bob", "Name: Bob"),
        ("persona", None, "I am helpful."),
    ]


def test_delete_removes_the_block_and_its_history(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    url = f"/v1/agents/{agent_id}/blocks/notes"
    _put(client, auth, agent_id, "notes", value="one")
    _put(client, auth, agent_id, "notes", value="two")
    assert client.delete(url, headers=auth).status_code == 204
    _error(client.get(url, headers=auth), 404)
    _error(client.get(f"{url}/history", headers=auth), 404)
    _error(client.delete(url, headers=auth), 404)
    # a new block of that label starts again at version 1
    assert _put(client, auth, agent_id, "notes", value="three")["version"] == 1


def test_a_value_over_the_limit_is_413_and_changes_nothing(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    url = f"/v1/agents/{agent_id}/blocks/persona"
    _put(client, auth, agent_id, "persona", value="short", char_limit=10)
    error = _error(client.put(url, json={"value": "x" * 11}, headers=auth), 413, "value")
    assert error["type"] == "payload_too_large"
    body = {"value": "x" * 20, "char_limit": 19}
    _error(client.put(url, json=body, headers=auth), 413, "value")
    assert client.get(url, headers=auth).json()["value"] == "short"
    assert len(client.get(f"{url}/history", headers=auth).json()["data"]) == 1
    # raising the limit in the same write lets the longer value in
    assert _put(client, auth, agent_id, "persona", value="x" * 20, char_limit=20)["version"] == 2


@pytest.mark.parametrize(
    ("label", "body", "param"),
    [
        ("persona", {}, "value"),
        ("persona", {"value": "a", "char_limit": 0}, "char_limit"),
        ("persona", {"value": "a", "char_limit": 100_001}, "char_limit"),
        ("persona", {"value": "a", "user_id": ""}, "user_id"),
        ("persona", {"value": "a", "author": "me"}, "author"),
        ("Persona", {"value": "a"}, "label"),
        ("9lives", {"value": "a"}, "label"),
        ("x" * 65, {"value": "a"}, "label"),
        ("persona", {"value": "a\u0000"}, "value"),  # Postgres stores no NUL: was 500
    ],
)
def test_bad_puts_are_422(
    client: TestClient, auth: Headers, agent_id: str, label: str, body: dict[str, Any], param: str
) -> None:
    response = client.put(f"/v1/agents/{agent_id}/blocks/{label}", json=body, headers=auth)
    _error(response, 422, param)
    assert client.get(f"/v1/agents/{agent_id}/blocks", headers=auth).json()["data"] == []


def test_unknown_query_parameters_are_422(client: TestClient, auth: Headers, agent_id: str) -> None:
    url = f"/v1/agents/{agent_id}/blocks"
    _put(client, auth, agent_id, "persona", value="p")
    _error(client.get(url, params={"label": "persona"}, headers=auth), 422, "label")
    _error(client.get(f"{url}/persona", params={"userid": "ann"}, headers=auth), 422, "userid")
    _error(client.delete(f"{url}/persona", params={"force": "1"}, headers=auth), 422, "force")
    assert client.get(f"{url}/persona", headers=auth).status_code == 200


def test_another_tenants_blocks_are_404_and_untouched(
    client: TestClient, auth: Headers, other_auth: Headers, agent_id: str
) -> None:
    _put(client, auth, agent_id, "persona", value="I am acme's.")
    _put(client, auth, agent_id, "human", value="Name: Ann", user_id="ann")
    url = f"/v1/agents/{agent_id}/blocks"
    for response in (
        client.get(url, headers=other_auth),
        client.get(url, params={"user_id": "ann"}, headers=other_auth),
        client.get(f"{url}/persona", headers=other_auth),
        client.put(f"{url}/persona", json={"value": "mine now"}, headers=other_auth),
        client.put(f"{url}/fresh", json={"value": "planted"}, headers=other_auth),
        client.delete(f"{url}/persona", headers=other_auth),
        client.delete(f"{url}/human", params={"user_id": "ann"}, headers=other_auth),
        client.get(f"{url}/persona/history", headers=other_auth),
    ):
        _error(response, 404)
    listed = client.get(url, params={"user_id": "ann"}, headers=auth).json()["data"]
    assert [(b["label"], b["value"], b["version"]) for b in listed] == [
        ("human", "Name: Ann", 1),
        ("persona", "I am acme's.", 1),
    ]


@pytest.mark.parametrize("ident", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_agents_are_404(client: TestClient, auth: Headers, ident: str) -> None:
    url = f"/v1/agents/{ident}/blocks"
    _error(client.get(url, headers=auth), 404)
    _error(client.put(f"{url}/persona", json={"value": "x"}, headers=auth), 404)
    _error(client.get(f"{url}/persona/history", headers=auth), 404)


def test_routes_need_a_key(client: TestClient, agent_id: str) -> None:
    url = f"/v1/agents/{agent_id}/blocks"
    _error(client.get(url), 401)
    _error(client.put(f"{url}/persona", json={"value": "x"}), 401)
    _error(client.delete(f"{url}/persona"), 401)
