"""client.agents against scripted answers."""

from __future__ import annotations

import asyncio
import json

from agentmill import Agent

from tests.sdk.fakes import Server, agent_body, answer, async_client, client


def test_create_sends_only_the_fields_given() -> None:
    server = Server([answer(201, agent_body("helper", tools=["calculator"]))])
    agent = client(server).agents.create(
        "helper", tools=["calculator"], memory={"recall_k": 2}, temperature=0.2
    )
    assert isinstance(agent, Agent)
    assert agent.tools == ["calculator"]
    sent = json.loads(server.requests[0].content)
    assert sent == {
        "name": "helper",
        "tools": ["calculator"],
        "memory": {"recall_k": 2},
        "temperature": 0.2,
    }


def test_update_can_reset_temperature_and_leaves_out_the_rest() -> None:
    server = Server([answer(200, agent_body()), answer(200, agent_body())])
    agents = client(server).agents
    agents.update("a1", temperature=None)
    agents.update("a1", instructions="Answer in French.")
    assert server.requests[0].method == "PATCH"
    assert json.loads(server.requests[0].content) == {"temperature": None}
    assert json.loads(server.requests[1].content) == {"instructions": "Answer in French."}


def test_list_follows_the_cursor_through_every_page() -> None:
    pages = [
        answer(200, {"data": [agent_body("a"), agent_body("b")], "next_cursor": "c1"}),
        answer(200, {"data": [agent_body("c")], "next_cursor": None}),
    ]
    server = Server(pages)
    assert [a.name for a in client(server).agents.list(limit=2)] == ["a", "b", "c"]
    assert dict(server.requests[0].url.params) == {"limit": "2"}
    assert dict(server.requests[1].url.params) == {"limit": "2", "cursor": "c1"}


def test_list_is_lazy() -> None:
    server = Server([answer(200, {"data": [agent_body("a")], "next_cursor": "c1"})])
    first = next(iter(client(server).agents.list()))
    assert first.name == "a"
    assert len(server.requests) == 1


def test_delete_and_get() -> None:
    server = Server([answer(204), answer(200, agent_body("x"))])
    agents = client(server).agents
    agents.delete("a1")
    assert agents.get("a1").name == "x"
    assert [(r.method, r.url.path) for r in server.requests] == [
        ("DELETE", "/v1/agents/a1"),
        ("GET", "/v1/agents/a1"),
    ]


def test_async_list_follows_the_cursor() -> None:
    pages = [
        answer(200, {"data": [agent_body("a")], "next_cursor": "c1"}),
        answer(200, {"data": [agent_body("b")], "next_cursor": None}),
    ]

    async def main() -> list[str]:
        async with async_client(Server(pages)) as am:
            return [agent.name async for agent in am.agents.list()]

    assert asyncio.run(main()) == ["a", "b"]
