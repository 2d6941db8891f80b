"""The context builder on the real embedded Postgres, counting with the scripted model: history
trimmed newest first to the budget, the rest summarised, counts fetched in one call per step,
and a counting outage waited out like any model outage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents import agent_store
from agents.records import MemoryPolicy, Run
from agents.runs import store as run_store
from agents.runs.context_builder import ContextBuilder
from agents.runs.executor import Services
from agents.runs.journal import RunJournal
from agents.runs.model_calls import ModelCalls
from agents.runs.prompt import SUMMARY_INSTRUCTIONS
from agents.runs.tokens import WINDOW_MARGIN, prompt_budget
from agents.tables import RunRow
from core.config import Settings
from core.db import transaction
from inference.client.model_client import ModelUnavailable
from inference.client.scripted import ScriptedModel, scripted_tokens, text_reply
from tests.agents.conftest import World, WorldFactory

OWNER = "test-worker"
TOOLS_COST = [{"role": "system", "content": "[]"}]  # what the builder adds for no tools
PROBE = {"role": "system", "content": ""}


@pytest.fixture
def small_world(new_world: WorldFactory, database_url: str, tmp_path: Path) -> World:
    """A window that holds a few of the long history messages below, no memory recall."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        inference_context=700,
        agent_max_output_tokens=64,
        run_lease_s=2.0,
        model_retry_s=1.0,
    )
    world = new_world(settings)
    world.update_agent(tools=[], memory=MemoryPolicy(recall_k=0, extract_facts=False))
    return world


def talk(world: World, exchanges: int) -> list[dict[str, Any]]:
    """Earlier exchanges of the session (answered runs), each message ~400 characters; returns
    them as chat messages, oldest first."""
    said: list[dict[str, Any]] = []
    for n in range(exchanges):
        question, answer = f"question {n}: " + "la " * 130, f"answer {n}: " + "lo " * 130
        run = world.message(question)
        with transaction(world.engine) as session:
            row = session.get(RunRow, run.id)
            assert row is not None
            run_store.finish(session, row, "succeeded", stop_reason="answer", output=answer)
        said += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return said


def claim(world: World, content: str = "and now?") -> Run:
    """A new run of the session, claimed as the executor claims it."""
    queued = world.message(content)
    with transaction(world.engine) as session:
        run = run_store.claim(session, queued.id, OWNER, world.settings.run_lease_s)
    assert run is not None
    return run


def builder(
    world: World, model: ScriptedModel, run: Run | None = None, settings: Settings | None = None
) -> ContextBuilder:
    """The builder of an attempt at `run` (a new claimed run if None)."""
    services = Services(
        engine=world.engine,
        model=model,
        tools=world.registry,
        portal=world.portal,
        settings=settings or world.settings,
        memory=world.memory,
    )
    run = run or claim(world)
    with transaction(world.engine) as session:
        agent = agent_store.get_agent(session, world.tenant_id, world.agent_id)
    journal = RunJournal(services, run, OWNER)
    return ContextBuilder(services, journal, ModelCalls(journal, model), agent, world.chat)


def test_history_is_kept_newest_first_within_the_budget_and_the_rest_summarised(
    small_world: World,
) -> None:
    history = talk(small_world, 6)
    model = ScriptedModel([text_reply("SUMMARY of the start")])
    context = builder(small_world, model).messages([], tools_schema=[])

    budget = prompt_budget(small_world.settings, "local")
    kept = context[1:-1]
    assert context[-1] == {"role": "user", "content": "and now?"}
    assert 0 < len(kept) < len(history)
    assert kept == history[-len(kept) :]  # the newest, in their order
    assert scripted_tokens(context + TOOLS_COST) <= budget
    older = history[-len(kept) - 1]
    assert scripted_tokens([context[0], older, *kept, context[-1], *TOOLS_COST]) > budget
    # What did not fit went to the summary, which the system message now carries.
    (summary_request,) = model.requests
    assert summary_request.messages[0]["content"] == SUMMARY_INSTRUCTIONS
    asked = summary_request.messages[1]["content"]
    assert all(m["content"][:30] in asked for m in history[: -len(kept)])
    assert not any(m["content"][:30] in asked for m in kept)
    assert context[0]["content"].endswith(
        "Summary of the earlier conversation:\nSUMMARY of the start"
    )


def test_the_budget_is_filled_exactly_and_one_token_less_drops_the_oldest(
    small_world: World,
) -> None:
    history = talk(small_world, 2)
    run = claim(small_world)
    roomy = builder(small_world, ScriptedModel([]), run).messages([], tools_schema=[])
    assert roomy[1:-1] == history
    total = scripted_tokens(roomy + TOOLS_COST)  # what the prompt costs, counted whole
    window = 10_000
    exact = small_world.settings.model_copy(
        update={
            "inference_context": window,
            "agent_max_output_tokens": int(window * WINDOW_MARGIN) - total,
        }
    )
    assert prompt_budget(exact, "local") == total
    fitted = builder(small_world, ScriptedModel([]), run, exact).messages([], tools_schema=[])
    assert fitted == roomy

    tighter = exact.model_copy(
        update={"agent_max_output_tokens": exact.agent_max_output_tokens + 1}
    )
    model = ScriptedModel([text_reply("S")])
    trimmed = builder(small_world, model, run, tighter).messages([], tools_schema=[])
    assert trimmed[1:-1] == history[1:]
    assert history[0]["content"][:30] in model.requests[0].messages[1]["content"]


def test_counts_come_in_one_call_per_step(small_world: World) -> None:
    history = talk(small_world, 2)  # fits: nothing to summarise
    model = ScriptedModel([])
    build = builder(small_world, model)
    first = build.messages([], tools_schema=[])
    assert first[1:-1] == history
    ((alias, prompts),) = model.counted
    assert alias == "local"
    assert prompts[0] == first[:1] + first[-1:] + TOOLS_COST  # the fixed messages
    assert prompts[1:] == [[PROBE, m] for m in history] + [[PROBE]]

    second = build.messages([], tools_schema=[])  # the next step
    assert second == first
    assert [sent for _alias, sent in model.counted] == [prompts, prompts]


def test_a_session_without_history_counts_nothing(small_world: World) -> None:
    model = ScriptedModel([])
    context = builder(small_world, model).messages([], tools_schema=[])
    assert [m["role"] for m in context] == ["system", "user"]
    assert model.counted == []


def test_a_counting_outage_is_waited_out_like_a_model_outage(small_world: World) -> None:
    history = talk(small_world, 1)
    model = ScriptedModel([], count_failures=[ModelUnavailable("unreachable")])
    build = builder(small_world, model)
    context = build.messages([], tools_schema=[])
    assert context[1:-1] == history
    assert len(model.counted) == 2  # the failed call, then its retry
    waits = [e.data for e in small_world.events(build.run.id) if e.type == "run.waiting"]
    assert [w["reason"] for w in waits] == ["unreachable"]
    assert waits[0]["message"] == "the model server could not be reached"
