"""Fact extraction: a valid answer is stored as fact memories with provenance; anything that
does not validate is dropped whole and logged."""

from __future__ import annotations

import asyncio
import json

import pytest

from agents import agent_store
from agents.records import Agent, ChatSession, Run
from agents.runs.facts import extract_facts, extraction_request, parse_extraction
from core.db import transaction
from inference.client.scripted import ScriptedModel, text_reply
from memory.filters import MemoryFilter
from tests.agents.conftest import World


def finished_run(world: World, text: str, answer: str) -> tuple[Agent, ChatSession, Run]:
    run = world.message(text)
    world.executor(ScriptedModel([text_reply(answer)])).execute(run.id)
    with transaction(world.engine) as session:
        agent = agent_store.get_agent(session, world.tenant_id, world.agent_id)
    return agent, world.chat, world.run(run.id)


def test_valid_facts_are_stored_with_provenance(world: World) -> None:
    agent, chat, run = finished_run(world, "I live in Lyon and I have two cats.", "Nice!")
    answer = json.dumps(
        {"facts": [{"content": "The user lives in Lyon.", "importance": 0.8},
                   {"content": "The user has two cats."}]}
    )  # fmt: skip
    model = ScriptedModel([text_reply(answer)])
    stored = asyncio.run(extract_facts(model, world.memory, agent, chat, run))

    assert stored == 2
    request = model.requests[0]
    assert request.response_format is not None
    assert request.response_format["type"] == "json_schema"
    assert "I live in Lyon" in request.messages[-1]["content"]
    facts = world.memory.list_memories(world.tenant_id, MemoryFilter(kinds=("fact",)))
    assert sorted(f.content for f in facts) == ["The user has two cats.", "The user lives in Lyon."]
    assert all(f.source_run_id == run.id and f.user_id == "user-1" for f in facts)


@pytest.mark.parametrize(
    "garbage",
    [
        "not json at all",
        '{"facts": [{"content": "The user lives in Lyon."}',  # cut off
        '{"facts": "Lyon"}',
        '{"facts": [{"content": "ok sentence", "extra": 1}]}',
        json.dumps({"facts": [{"content": f"fact {n}"} for n in range(9)]}),  # too many
    ],
)
def test_an_invalid_extraction_is_dropped_whole(
    world: World, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    agent, chat, run = finished_run(world, "I live in Lyon.", "Nice!")
    model = ScriptedModel([text_reply(garbage)])
    stored = asyncio.run(extract_facts(model, world.memory, agent, chat, run))
    assert stored == 0
    assert world.memory.list_memories(world.tenant_id, MemoryFilter(kinds=("fact",))) == []
    assert "dropped" in caplog.text


def test_the_schema_matches_the_parser() -> None:
    assert parse_extraction('{"facts": []}') == []
    assert parse_extraction(None) is None
    assert extraction_request.__doc__
