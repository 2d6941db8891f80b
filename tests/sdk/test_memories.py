"""client.memories and client.blocks against scripted answers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import agentmill
import httpx
import pytest
from agentmill import Block, BlockVersion, Memory, MemoryHit, MemoryWritten

from tests.sdk.fakes import (
    AGENT_ID,
    NOW,
    SESSION_ID,
    Server,
    answer,
    async_client,
    block_body,
    client,
    erased_body,
    error_body,
    memory_body,
)

MEMORIES = f"/v1/agents/{AGENT_ID}/memories"


def test_add_sends_the_fields_given_and_is_retried_with_its_idempotency_key() -> None:
    server = Server([answer(201, {**memory_body(), "deduplicated": False})])
    written = client(server).memories.add(
        AGENT_ID, "Ann likes tea.", user_id="ann", session_id=SESSION_ID, metadata={"src": "crm"}
    )
    assert isinstance(written, MemoryWritten)
    assert not written.deduplicated
    request = server.requests[0]
    assert (request.method, request.url.path) == ("POST", MEMORIES)
    assert json.loads(request.content) == {
        "content": "Ann likes tea.",
        "user_id": "ann",
        "session_id": str(SESSION_ID),
        "metadata": {"src": "crm"},
    }

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    server = Server([dropped, answer(201, {**memory_body(), "deduplicated": False})])
    assert not client(server).memories.add(AGENT_ID, "x").deduplicated
    first, retry = server.requests
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]


def test_search_sends_the_query_and_every_filter() -> None:
    hit = {"score": 0.9, "memory": memory_body()}
    server = Server([answer(200, {"data": [hit], "next_cursor": None})])
    after = datetime(2025, 1, 1, tzinfo=UTC)
    hits = client(server).memories.search(
        AGENT_ID,
        "What does Ann drink?",
        k=3,
        user_id="ann",
        session_id=SESSION_ID,
        kind=["fact", "summary"],
        created_after=after,
        metadata={"src": "crm"},
    )
    assert isinstance(hits[0], MemoryHit)
    assert hits[0].memory.content == "Ann likes tea."
    params = server.requests[0].url.params
    assert params["query"] == "What does Ann drink?"
    assert params["k"] == "3"
    assert params["user_id"] == "ann"
    assert params["session_id"] == str(SESSION_ID)
    assert params.get_list("kind") == ["fact", "summary"]
    assert params["created_after"] == "2025-01-01T00:00:00+00:00"
    assert json.loads(params["metadata"]) == {"src": "crm"}


def test_list_follows_the_cursor_with_the_filters_on_every_page() -> None:
    server = Server(
        [
            answer(200, {"data": [memory_body("a"), memory_body("b")], "next_cursor": "c1"}),
            answer(200, {"data": [memory_body("c")], "next_cursor": None}),
        ]
    )
    listed = list(client(server).memories.list(AGENT_ID, limit=2, kind="fact"))
    assert [m.content for m in listed] == ["a", "b", "c"]
    assert all(isinstance(m, Memory) for m in listed)
    first, second = (dict(r.url.params) for r in server.requests)
    assert first == {"limit": "2", "kind": "fact"}
    assert second == {"limit": "2", "kind": "fact", "cursor": "c1"}


def test_get_delete_and_erase_a_user_with_a_slash_in_the_id() -> None:
    server = Server(
        [
            answer(200, memory_body()),
            answer(204),
            answer(200, {"deleted": 3, "erased": erased_body(memories=2, blocks=1)}),
            answer(200, {"deleted": 1, "erased": erased_body(memories=1)}),
        ]
    )
    memories = client(server).memories
    assert memories.get("m1").content == "Ann likes tea."
    memories.delete("m1")
    assert memories.erase_user("org/42") == 3
    assert memories.erase_user("ann", agent_id=AGENT_ID) == 1
    assert [(r.method, r.url.raw_path.decode()) for r in server.requests] == [
        ("GET", "/v1/memories/m1"),
        ("DELETE", "/v1/memories/m1"),
        ("DELETE", "/v1/users/org%2F42"),
        ("DELETE", f"/v1/agents/{AGENT_ID}/users/ann"),
    ]


def test_erase_returns_every_count() -> None:
    counts = erased_body(memories=2, blocks=1, block_versions=3, sessions=1, messages=4)
    server = Server([answer(200, {"deleted": 3, "erased": counts})])
    erased = client(server).memories.erase("ann", agent_id=AGENT_ID)
    assert isinstance(erased, agentmill.Erased)
    assert erased.deleted == 3
    assert erased.erased == agentmill.ErasedCounts(**counts)
    assert server.requests[0].url.path == f"/v1/agents/{AGENT_ID}/users/ann"


def test_a_user_id_ending_in_memories_goes_through_the_older_form() -> None:
    # The server reads /users/org%2Fmemories as the older form for user "org".
    answers = [answer(200, {"deleted": 0, "erased": erased_body()}) for _ in range(2)]
    server = Server(answers)
    memories = client(server).memories
    memories.erase("org/memories")
    memories.erase("org/memories", agent_id=AGENT_ID)
    assert [r.url.raw_path.decode() for r in server.requests] == [
        "/v1/users/org%2Fmemories/memories",
        f"/v1/agents/{AGENT_ID}/users/org%2Fmemories/memories",
    ]


def test_update_sends_only_the_fields_given_and_is_not_retried_after_reaching_the_server() -> None:
    server = Server([answer(200, memory_body("Ann likes green tea.", importance=0.9))])
    updated = client(server).memories.update("m1", content="Ann likes green tea.", importance=0.9)
    assert isinstance(updated, Memory)
    assert (updated.content, updated.importance) == ("Ann likes green tea.", 0.9)
    request = server.requests[0]
    assert (request.method, request.url.path) == ("PATCH", "/v1/memories/m1")
    assert json.loads(request.content) == {"content": "Ann likes green tea.", "importance": 0.9}

    server = Server([answer(200, memory_body(metadata={}))])
    client(server).memories.update("m1", metadata={})
    assert json.loads(server.requests[0].content) == {"metadata": {}}

    server = Server([answer(503, error_body("unavailable", "db")), answer(200, memory_body())])
    with pytest.raises(agentmill.APIError):
        client(server).memories.update("m1", importance=0.1)
    assert len(server.requests) == 1


def test_update_errors_are_the_sdk_types() -> None:
    duplicate = error_body("conflict", "a near-duplicate memory holds that content")
    empty = error_body("validation_error", "give at least one of content, importance, metadata")
    server = Server([answer(409, duplicate), answer(422, empty)])
    memories = client(server).memories
    with pytest.raises(agentmill.ConflictError):
        memories.update("m1", content="Bob likes tea.")
    with pytest.raises(agentmill.UnprocessableEntityError):
        memories.update("m1")
    assert json.loads(server.requests[1].content) == {}


def test_an_unknown_filter_refused_by_the_server_names_it() -> None:
    refused = error_body("validation_error", "k: k applies to searches: pass query", "k")
    server = Server([answer(422, refused)])
    with pytest.raises(agentmill.UnprocessableEntityError) as raised:
        list(client(server).memories.list(AGENT_ID))
    assert raised.value.param == "k"


def test_blocks_set_get_list_history_delete() -> None:
    version = {"version": 1, "value": "v", "char_limit": 5000, "author": "api", "created_at": NOW}
    server = Server(
        [
            answer(200, block_body("human", "Ann", user_id="ann")),
            answer(200, block_body("human", "Ann", user_id="ann")),
            answer(200, {"data": [block_body(), block_body("human")], "next_cursor": None}),
            answer(200, {"data": [version], "next_cursor": None}),
            answer(204),
        ]
    )
    blocks = client(server).blocks
    block = blocks.set(AGENT_ID, "human", "Ann", user_id="ann", char_limit=100)
    assert isinstance(block, Block)
    assert block.user_id == "ann"
    assert blocks.get(AGENT_ID, "human", user_id="ann").value == "Ann"
    assert [b.label for b in blocks.list(AGENT_ID)] == ["persona", "human"]
    history = list(blocks.history(AGENT_ID, "human", user_id="ann"))
    assert isinstance(history[0], BlockVersion)
    blocks.delete(AGENT_ID, "human", user_id="ann")
    put = server.requests[0]
    assert (put.method, put.url.path) == ("PUT", f"/v1/agents/{AGENT_ID}/blocks/human")
    assert json.loads(put.content) == {"value": "Ann", "char_limit": 100, "user_id": "ann"}
    assert [(r.method, r.url.path, dict(r.url.params)) for r in server.requests[1:]] == [
        ("GET", f"/v1/agents/{AGENT_ID}/blocks/human", {"user_id": "ann"}),
        ("GET", f"/v1/agents/{AGENT_ID}/blocks", {}),
        ("GET", f"/v1/agents/{AGENT_ID}/blocks/human/history", {"limit": "50", "user_id": "ann"}),
        ("DELETE", f"/v1/agents/{AGENT_ID}/blocks/human", {"user_id": "ann"}),
    ]


def test_history_follows_the_cursor_with_the_user_on_every_page() -> None:
    def version(n: int) -> dict[str, object]:
        return {
            "version": n,
            "value": f"v{n}",
            "char_limit": 5000,
            "author": "api",
            "created_at": NOW,
        }

    server = Server(
        [
            answer(200, {"data": [version(1), version(2)], "next_cursor": "2"}),
            answer(200, {"data": [version(3)], "next_cursor": None}),
            answer(200, {"data": [version(4)], "next_cursor": "4"}),
        ]
    )
    blocks = client(server).blocks
    history = blocks.history(AGENT_ID, "human", user_id="ann", limit=2)
    assert [v.version for v in history] == [1, 2, 3]
    page = blocks.history_page(AGENT_ID, "human", limit=1, cursor="3")
    assert ([v.version for v in page.data], page.next_cursor) == ([4], "4")
    assert [dict(r.url.params) for r in server.requests] == [
        {"limit": "2", "user_id": "ann"},
        {"limit": "2", "user_id": "ann", "cursor": "2"},
        {"limit": "1", "cursor": "3"},
    ]


def test_a_block_put_is_retried_as_idempotent() -> None:
    server = Server([answer(503, error_body("unavailable", "db")), answer(200, block_body())])
    assert client(server).blocks.set(AGENT_ID, "persona", "I am terse.").version == 1
    assert len(server.requests) == 2


def test_async_memories_and_blocks() -> None:
    version = {"version": 1, "value": "v", "char_limit": 5000, "author": "api", "created_at": NOW}
    server = Server(
        [
            answer(201, {**memory_body(), "deduplicated": False}),
            answer(200, {"data": [{"score": 1.0, "memory": memory_body()}], "next_cursor": None}),
            answer(200, {"data": [memory_body("a")], "next_cursor": "c1"}),
            answer(200, {"data": [memory_body("b")], "next_cursor": None}),
            answer(200, memory_body("c", importance=0.2)),
            answer(200, {"deleted": 2, "erased": erased_body(memories=1, blocks=1)}),
            answer(200, {"deleted": 2, "erased": erased_body(memories=1, blocks=1, sessions=1)}),
            answer(200, block_body()),
            answer(200, {"data": [version], "next_cursor": "1"}),
            answer(200, {"data": [{**version, "version": 2}], "next_cursor": None}),
        ]
    )

    async def main() -> tuple[list[str], float, int, int, str, list[int]]:
        async with async_client(server) as am:
            await am.memories.add(AGENT_ID, "Ann likes tea.", user_id="ann")
            hits = await am.memories.search(AGENT_ID, "tea", user_id="ann")
            assert hits[0].score == 1.0
            listed = [m.content async for m in am.memories.list(AGENT_ID)]
            updated = await am.memories.update("m1", importance=0.2)
            erased = await am.memories.erase_user("ann")
            report = await am.memories.erase("ann")
            block = await am.blocks.set(AGENT_ID, "persona", "I am terse.")
            versions = [v.version async for v in am.blocks.history(AGENT_ID, "persona", limit=1)]
            return listed, updated.importance, erased, report.erased.sessions, block.label, versions

    assert asyncio.run(main()) == (["a", "b"], 0.2, 2, 1, "persona", [1, 2])
    assert server.requests[9].url.params["cursor"] == "1"
