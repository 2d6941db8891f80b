"""Long-term memories over REST, on the real database with the real embedding model: write,
dedupe, search, filters, pagination, delete, erase, bad input and tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.deps import MemoryProvider
from api.schemas.common import encode_cursor
from core.config import Settings
from core.db import transaction
from core.tenants import ensure_tenant
from memory.records import NewMemory
from memory.store import MemoryStore
from tests.api.conftest import MEMORY_MAX_CONTENT_CHARS
from tests.api.support import Headers, RecordingQueue


@pytest.fixture
def client(memory_client: TestClient) -> TestClient:
    """The app with the real-embedder memory store (agent_id and session_id use it too)."""
    return memory_client


def _error(response: Any, status: int, param: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    if param is not None:
        assert body["error"].get("param") == param, body
    error: dict[str, str] = body["error"]
    return error


def _add(client: TestClient, auth: Headers, agent_id: str, content: str, **fields: Any) -> Any:
    response = client.post(
        f"/v1/agents/{agent_id}/memories", json={"content": content, **fields}, headers=auth
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def _contents(page: dict[str, Any]) -> list[str]:
    return [item["content"] for item in page["data"]]


def _hits(client: TestClient, auth: Headers, agent_id: str, **params: Any) -> list[str]:
    response = client.get(f"/v1/agents/{agent_id}/memories", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return [hit["memory"]["content"] for hit in response.json()["data"]]


def _everything(client: TestClient, auth: Headers, agent_id: str, **params: Any) -> list[str]:
    response = client.get(
        f"/v1/agents/{agent_id}/memories", params={"limit": 100, **params}, headers=auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return _contents(response.json())


def test_create_then_read_back(client: TestClient, auth: Headers, agent_id: str) -> None:
    response = client.post(
        f"/v1/agents/{agent_id}/memories",
        json={"content": "Ann is allergic to peanuts.", "user_id": "ann", "metadata": {"a": 1}},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["deduplicated"] is False
    assert created["agent_id"] == agent_id
    assert created["kind"] == "fact"
    assert created["importance"] == 0.5
    assert created["user_id"] == "ann"
    assert created["metadata"] == {"a": 1}
    assert created["access_count"] == 0
    assert "embedding" not in created
    fetched = client.get(f"/v1/memories/{created['id']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json() == {k: v for k, v in created.items() if k != "deduplicated"}


def test_near_duplicate_merges_into_the_existing_memory(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    first = _add(client, auth, agent_id, "Hana lives in Kyoto.", user_id="hana")
    response = client.post(
        f"/v1/agents/{agent_id}/memories",
        json={"content": "Hana lives in Kyoto", "user_id": "hana", "importance": 0.9},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["deduplicated"] is True
    assert merged["id"] == first["id"]
    assert merged["content"] == "Hana lives in Kyoto"
    assert merged["importance"] == 0.9
    # a different fact is its own memory
    assert (
        _add(client, auth, agent_id, "Hana lives in Osaka now", user_id="hana")["id"]
        != (first["id"])
    )
    assert len(_everything(client, auth, agent_id)) == 2


def test_a_session_gives_its_user_and_must_be_the_agents(
    client: TestClient, auth: Headers, other_auth: Headers, agent_id: str, session_id: str
) -> None:
    url = f"/v1/agents/{agent_id}/memories"
    written = _add(client, auth, agent_id, "We talked about pottery.", session_id=session_id)
    assert written["session_id"] == session_id
    assert written["user_id"] == "u1"
    body = {"content": "x", "session_id": session_id, "user_id": "someone-else"}
    _error(client.post(url, json=body, headers=auth), 422, "user_id")
    other_agent = client.post("/v1/agents", json={"name": "second"}, headers=auth).json()["id"]
    body = {"content": "x", "session_id": session_id}
    response = client.post(f"/v1/agents/{other_agent}/memories", json=body, headers=auth)
    _error(response, 422, "session_id")
    # another tenant's session does not exist for acme
    theirs = client.post("/v1/agents", json={"name": "theirs"}, headers=other_auth).json()["id"]
    their_session = client.post(
        f"/v1/agents/{theirs}/sessions", json={}, headers=other_auth
    ).json()["id"]
    _error(client.post(url, json={"content": "x", "session_id": their_session}, headers=auth), 404)
    assert _everything(client, auth, agent_id) == ["We talked about pottery."]


FACTS = [
    ("Ann adopted a puppy named Rex last spring.", "ann", "fact", {"topic": "pets"}),
    ("Ann works as a nurse at the city hospital.", "ann", "fact", {"topic": "work"}),
    ("Ann's favourite food is ramen.", "ann", "summary", {"topic": "food"}),
    ("Bob is learning to play the cello.", "bob", "fact", {"topic": "music"}),
    ("Bob moved to Lisbon in March.", "bob", "episodic", {"topic": "places"}),
]


@pytest.fixture
def facts(client: TestClient, auth: Headers, agent_id: str) -> list[dict[str, Any]]:
    """The FACTS, written one request each (oldest first)."""
    return [
        _add(client, auth, agent_id, content, user_id=user, kind=kind, metadata=metadata)
        for content, user, kind, metadata in FACTS
    ]


@pytest.mark.usefixtures("facts")
def test_search_finds_the_relevant_memory(client: TestClient, auth: Headers, agent_id: str) -> None:
    response = client.get(
        f"/v1/agents/{agent_id}/memories", params={"query": "Does Ann have a dog?"}, headers=auth
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    hits = page["data"]
    assert hits[0]["memory"]["content"] == FACTS[0][0]
    assert all(set(hit) == {"score", "memory"} for hit in hits)
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert _hits(client, auth, agent_id, query="Which city did Bob move to?")[0] == FACTS[4][0]
    assert len(_hits(client, auth, agent_id, query="Ann", k=2)) == 2


@pytest.mark.usefixtures("facts")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"user_id": "bob"}, {FACTS[3][0], FACTS[4][0]}),
        ({"kind": "summary"}, {FACTS[2][0]}),
        ({"kind": ["summary", "episodic"]}, {FACTS[2][0], FACTS[4][0]}),
        ({"metadata": '{"topic": "work"}'}, {FACTS[1][0]}),
        ({"user_id": "ann", "kind": "fact"}, {FACTS[0][0], FACTS[1][0]}),
        ({"user_id": "nobody"}, set()),
    ],
)
def test_filters_apply_to_search_and_list(
    client: TestClient,
    auth: Headers,
    agent_id: str,
    params: dict[str, Any],
    expected: set[str],
) -> None:
    assert set(_everything(client, auth, agent_id, **params)) == expected
    found = _hits(client, auth, agent_id, query="Ann Bob puppy nurse ramen cello Lisbon", **params)
    assert set(found) == expected


def test_time_filters(
    client: TestClient, auth: Headers, agent_id: str, facts: list[dict[str, Any]]
) -> None:
    third = facts[2]["created_at"]
    newer = _everything(client, auth, agent_id, created_after=third)
    assert newer == [FACTS[4][0], FACTS[3][0], FACTS[2][0]]
    older = _everything(client, auth, agent_id, created_before=third)
    assert older == [FACTS[1][0], FACTS[0][0]]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _hits(client, auth, agent_id, query="Ann", created_after=future) == []


def _acme(engine: Engine) -> uuid.UUID:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "acme")
    return tenant_id


# Distinct enough that none is a near-duplicate of another.
BATCH = [
    "The quarterly report is due on Friday.",
    "Dana plays chess every Tuesday evening.",
    "The staging server runs Debian 12.",
    "Eli is training for a marathon in October.",
    "The team lunch moved to the Thai place.",
]
LATER = ["Frank's flight lands at 6 pm.", "Gina collects vintage postcards."]


def _pages(client: TestClient, auth: Headers, agent_id: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(f"/v1/agents/{agent_id}/memories", params=params, headers=auth)
        assert response.status_code == 200, response.text
        pages.append(_contents(response.json()))
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


def test_list_pages_newest_first_with_an_opaque_cursor(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine, memory: MemoryStore
) -> None:
    agent = uuid.UUID(agent_id)
    # one batch: these five share one created_at, so pages split a tie
    memory.add_many(_acme(engine), [NewMemory(agent, text, kind="fact") for text in BATCH])
    later = [_add(client, auth, agent_id, text)["content"] for text in LATER]
    pages = _pages(client, auth, agent_id, limit=2)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    seen = [content for page in pages for content in page]
    assert seen[:2] == later[::-1]
    assert sorted(seen[2:]) == sorted(BATCH)
    assert seen == _everything(client, auth, agent_id)


def test_new_memories_do_not_shift_later_pages(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    written = [_add(client, auth, agent_id, text)["content"] for text in BATCH[:3]]
    url = f"/v1/agents/{agent_id}/memories"
    first = client.get(url, params={"limit": 2}, headers=auth).json()
    assert _contents(first) == [written[2], written[1]]
    _add(client, auth, agent_id, LATER[0])
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = client.get(url, params=params, headers=auth).json()
    assert _contents(second) == [written[0]]
    assert second["next_cursor"] is None


def test_delete_one_memory(client: TestClient, auth: Headers, agent_id: str) -> None:
    kept = _add(client, auth, agent_id, "The office wifi password rotates monthly.")
    gone = _add(client, auth, agent_id, "Carol prefers tea over coffee.")
    assert client.delete(f"/v1/memories/{gone['id']}", headers=auth).status_code == 204
    _error(client.get(f"/v1/memories/{gone['id']}", headers=auth), 404)
    _error(client.delete(f"/v1/memories/{gone['id']}", headers=auth), 404)
    assert _everything(client, auth, agent_id) == [kept["content"]]
    assert _hits(client, auth, agent_id, query="Carol tea") == [kept["content"]]


def _put_block(client: TestClient, auth: Headers, agent_id: str, label: str, **body: Any) -> None:
    response = client.put(f"/v1/agents/{agent_id}/blocks/{label}", json=body, headers=auth)
    assert response.status_code == 200, response.text


@pytest.fixture
def two_agents_with_ann(client: TestClient, auth: Headers, agent_id: str) -> tuple[str, str]:
    """Two agents of acme, each with memories and a block about Ann and about Bob."""
    second = client.post("/v1/agents", json={"name": "second"}, headers=auth).json()["id"]
    for agent in (agent_id, second):
        _add(client, auth, agent, "Ann adopted a puppy named Rex.", user_id="ann")
        _add(client, auth, agent, "Ann works night shifts.", user_id="ann", kind="summary")
        _add(client, auth, agent, "Bob plays the cello.", user_id="bob")
        _put_block(client, auth, agent, "human", value="Name: Ann", user_id="ann")
        _put_block(client, auth, agent, "human", value="Name: Bob", user_id="bob")
        _put_block(client, auth, agent, "persona", value="I am helpful.")
    return agent_id, second


def _ann_left(client: TestClient, auth: Headers, agent: str) -> tuple[list[str], list[str], int]:
    """Ann's memories listed, found by a search, and the status of her block, in one agent."""
    listed = _everything(client, auth, agent, user_id="ann")
    found = _hits(client, auth, agent, query="Ann puppy Rex night shifts")
    ann_found = [content for content in found if content.startswith("Ann")]
    block = client.get(f"/v1/agents/{agent}/blocks/human", params={"user_id": "ann"}, headers=auth)
    return listed, ann_found, block.status_code


def test_erase_a_user_for_one_agent(
    client: TestClient, auth: Headers, two_agents_with_ann: tuple[str, str]
) -> None:
    first, second = two_agents_with_ann
    response = client.delete(f"/v1/agents/{first}/users/ann/memories", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == 3  # two memories and her block
    assert _ann_left(client, auth, first) == ([], [], 404)
    listed, found, block_status = _ann_left(client, auth, second)
    assert len(listed) == 2
    assert found
    assert block_status == 200
    # the other user and the agent's own block stay
    assert _everything(client, auth, first, user_id="bob") == ["Bob plays the cello."]
    blocks = client.get(f"/v1/agents/{first}/blocks", params={"user_id": "bob"}, headers=auth)
    assert {(b["label"], b["user_id"]) for b in blocks.json()["data"]} == {
        ("human", "bob"),
        ("persona", None),
    }
    again = client.delete(f"/v1/agents/{first}/users/ann/memories", headers=auth)
    assert again.json()["deleted"] == 0


def test_erase_a_user_everywhere(
    client: TestClient, auth: Headers, two_agents_with_ann: tuple[str, str]
) -> None:
    response = client.delete("/v1/users/ann/memories", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == 6  # 2 agents x (2 memories + 1 block)
    for agent in two_agents_with_ann:
        assert _ann_left(client, auth, agent) == ([], [], 404)
        assert _everything(client, auth, agent, user_id="bob") == ["Bob plays the cello."]
        history = client.get(
            f"/v1/agents/{agent}/blocks/human/history", params={"user_id": "ann"}, headers=auth
        )
        _error(history, 404)
    assert client.delete("/v1/users/ann/memories", headers=auth).json()["deleted"] == 0


def test_erasing_a_user_id_with_a_nul_is_422(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    # Found by the fuzzer: Postgres takes no NUL in a text parameter, and the delete failed.
    for path in (f"/v1/agents/{agent_id}/users/a%00b/memories", "/v1/users/a%00b/memories"):
        _error(client.delete(path, headers=auth), 422, "user_id")


def test_a_user_id_with_a_slash_can_be_erased(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    _add(client, auth, agent_id, "Org member likes dark mode.", user_id="org/42")
    _add(client, auth, agent_id, "Plain user likes light mode.", user_id="42")
    response = client.delete(f"/v1/agents/{agent_id}/users/org%2F42/memories", headers=auth)
    assert response.json()["deleted"] == 1
    assert _everything(client, auth, agent_id) == ["Plain user likes light mode."]
    assert client.delete("/v1/users/org%2F42/memories", headers=auth).json()["deleted"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/org%2Fmemories",
        "/v1/users/org%2Fmemories/memories",
        "/v1/agents/{agent}/users/org%2Fmemories",
        "/v1/agents/{agent}/users/org%2Fmemories/memories",
    ],
)
def test_a_user_id_ending_in_memories_erases_that_user_not_its_prefix(
    client: TestClient, auth: Headers, agent_id: str, path: str
) -> None:
    # The router matches the decoded path, where "org/memories" also reads as the older form
    # for user "org": the erase must take its user id from the raw path.
    _add(client, auth, agent_id, "Org itself likes tea.", user_id="org")
    _add(client, auth, agent_id, "The memories user likes coffee.", user_id="org/memories")
    response = client.delete(path.format(agent=agent_id), headers=auth)
    assert response.status_code == 200
    assert response.json()["erased"]["memories"] == 1
    assert _everything(client, auth, agent_id) == ["Org itself likes tea."]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"content": ""}, 422, "content"),
        ({"content": "   \n"}, 422, "content"),
        ({"content": "x" * (MEMORY_MAX_CONTENT_CHARS + 1)}, 413, "content"),
        ({}, 422, "content"),
        ({"content": "a", "kind": "opinion"}, 422, "kind"),
        ({"content": "a", "importance": 1.5}, 422, "importance"),
        ({"content": "a", "metadata": [1]}, 422, "metadata"),
        ({"content": "a", "user_id": ""}, 422, "user_id"),
        ({"content": "a", "session_id": "nope"}, 422, "session_id"),
        ({"content": "a", "embedding": [0.1]}, 422, "embedding"),
        ({"content": "a\u0000"}, 422, "content"),  # NUL, which Postgres cannot store: was 500
        ({"content": "a", "metadata": {"\u0000": 1}}, 422, "metadata"),
    ],
)
def test_bad_memories_are_refused(
    client: TestClient,
    auth: Headers,
    agent_id: str,
    body: dict[str, Any],
    status: int,
    param: str,
) -> None:
    response = client.post(f"/v1/agents/{agent_id}/memories", json=body, headers=auth)
    _error(response, status, param)
    assert _everything(client, auth, agent_id) == []


def test_content_at_the_limit_is_accepted(client: TestClient, auth: Headers, agent_id: str) -> None:
    _add(client, auth, agent_id, "y" * MEMORY_MAX_CONTENT_CHARS)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tenant_id": "x"}, "tenant_id"),
        ({"query": "a", "agent_id": str(uuid.uuid4())}, "agent_id"),
        ({"query": "a", "kind": "opinion"}, "kind.0"),
        ({"kind": "opinion"}, "kind.0"),
        ({"query": ""}, "query"),
        ({"query": "a", "k": 0}, "k"),
        ({"query": "a", "k": 51}, "k"),
        ({"k": 5}, "k"),
        ({"query": "a", "limit": 5}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"created_after": "2024-01-01T00:00:00"}, "created_after"),
        ({"created_before": "yesterday"}, "created_before"),
        ({"metadata": "{not json"}, "metadata"),
        ({"metadata": "[1, 2]"}, "metadata"),
        ({"session_id": "nope"}, "session_id"),
        ({"metadata": '{"a": "\\u0000"}'}, "metadata"),  # NUL in a filter: was 500
        ({"metadata": '{"a": NaN}'}, "metadata"),  # no NaN in JSONB: was 500
        ({"user_id": "u\u0000"}, "user_id"),
    ],
)
def test_bad_search_and_list_parameters_are_422(
    client: TestClient, auth: Headers, agent_id: str, params: dict[str, Any], param: str
) -> None:
    response = client.get(f"/v1/agents/{agent_id}/memories", params=params, headers=auth)
    error = _error(response, 422, param)
    assert error["type"] == "validation_error"


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor(7),  # a position cursor (messages, block versions), not a time one
        encode_cursor((datetime(2026, 1, 1), uuid.uuid4())),  # naive time: not one we return
    ],
)
def test_a_cursor_of_another_shape_is_422(
    client: TestClient, auth: Headers, agent_id: str, cursor: str
) -> None:
    response = client.get(
        f"/v1/agents/{agent_id}/memories", params={"cursor": cursor}, headers=auth
    )
    _error(response, 422, "cursor")


def test_a_cursor_at_the_earliest_time_lists_nothing(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    _add(client, auth, agent_id, "Dana plays chess every Tuesday evening.")
    cursor = encode_cursor((datetime(1, 1, 1, tzinfo=UTC), uuid.uuid4()))
    response = client.get(
        f"/v1/agents/{agent_id}/memories", params={"cursor": cursor}, headers=auth
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "next_cursor": None}


def test_an_overlong_query_is_413(client: TestClient, auth: Headers, agent_id: str) -> None:
    params = {"query": "q" * (MEMORY_MAX_CONTENT_CHARS + 1)}
    _error(client.get(f"/v1/agents/{agent_id}/memories", params=params, headers=auth), 413)


def test_another_tenants_memories_are_404_and_untouched(
    client: TestClient,
    auth: Headers,
    other_auth: Headers,
    agent_id: str,
    facts: list[dict[str, Any]],
) -> None:
    before = _everything(client, auth, agent_id)
    memory_id = facts[0]["id"]
    agent_url = f"/v1/agents/{agent_id}"
    for response in (
        client.post(f"{agent_url}/memories", json={"content": "mine now"}, headers=other_auth),
        client.get(f"{agent_url}/memories", headers=other_auth),
        client.get(f"{agent_url}/memories", params={"query": "Ann"}, headers=other_auth),
        client.get(f"/v1/memories/{memory_id}", headers=other_auth),
        client.delete(f"/v1/memories/{memory_id}", headers=other_auth),
        client.delete(f"{agent_url}/users/ann/memories", headers=other_auth),
    ):
        _error(response, 404)
    # user ids are per tenant: erasing "ann" for the other tenant erases its own (nothing)
    erased = client.delete("/v1/users/ann/memories", headers=other_auth)
    assert erased.json()["deleted"] == 0
    assert _everything(client, auth, agent_id) == before
    assert client.get(f"/v1/memories/{memory_id}", headers=auth).status_code == 200


@pytest.mark.parametrize("ident", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_ids_are_404(client: TestClient, auth: Headers, ident: str) -> None:
    _error(client.get(f"/v1/memories/{ident}", headers=auth), 404)
    _error(client.delete(f"/v1/memories/{ident}", headers=auth), 404)
    _error(client.get(f"/v1/agents/{ident}/memories", headers=auth), 404)
    _error(client.post(f"/v1/agents/{ident}/memories", json={"content": "x"}, headers=auth), 404)
    _error(client.delete(f"/v1/agents/{ident}/users/ann/memories", headers=auth), 404)


def test_routes_need_a_key(client: TestClient, agent_id: str) -> None:
    _error(client.get(f"/v1/agents/{agent_id}/memories"), 401)
    _error(client.post(f"/v1/agents/{agent_id}/memories", json={"content": "x"}), 401)
    _error(client.delete("/v1/users/ann/memories"), 401)


@pytest.mark.usefixtures("embedder")  # the model the default store loads, already in memory
def test_the_default_store_is_built_on_first_use(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, auth: Headers
) -> None:
    app = create_app(settings, engine, run_queue=run_queue)
    provider: MemoryProvider = app.state.memory
    with TestClient(app) as plain:
        agent = plain.post("/v1/agents", json={"name": "lazy"}, headers=auth).json()["id"]
        assert not provider.built
        written = _add(plain, auth, agent, "Ivan keeps bees on his roof.")
        assert provider.built
        assert _hits(plain, auth, agent, query="Who has bees?") == [written["content"]]
    assert not provider.built  # closed on shutdown
