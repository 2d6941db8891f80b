"""The step loop on the real embedded Postgres, driven by a scripted model: branching,
persistence, resume after a dead worker, cancellation, queueing and summaries."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from agents.agent_store import get_session, list_messages
from agents.records import CalledTool, MemoryPolicy, StepOutput, Usage
from agents.runs import store as run_store
from agents.runs.decide import CUT_OFF_MESSAGE
from agents.runs.prompt import SUMMARY_INSTRUCTIONS
from agents.runs.store import StepWrite
from core.config import Settings
from core.db import transaction
from inference.client.model_client import ChatRequest, ChatResult, DeltaSink, ModelRejected
from inference.client.scripted import ScriptedModel, scripted_tokens, text_reply, tool_calls_reply
from inference.errors import UnknownModel
from tests.agents.conftest import World, WorldFactory


def types(world: World, run_id: uuid.UUID) -> list[str]:
    return [e.type for e in world.events(run_id)]


def test_a_text_answer_finishes_the_run(world: World) -> None:
    run = world.message("hello")
    model = ScriptedModel([text_reply("Hi there, how can I help?")])
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert done.status == "succeeded"
    assert done.output == "Hi there, how can I help?"
    assert done.stop_reason == "answer"
    assert done.steps == 1
    events = world.events(run.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["run.queued", "run.started", "step.started"]
    assert kinds[-2:] == ["message", "run.succeeded"]
    deltas = "".join(e.data["delta"] for e in events if e.type == "message.delta")
    assert deltas == "Hi there, how can I help?"
    assert all(e.data["run_id"] == str(run.id) for e in events)
    assert world.sent.facts == [run.id]
    context = world.steps(run.id)[0].context
    assert context[0]["role"] == "system"
    assert "You help." in context[0]["content"]
    assert context[-1] == {"role": "user", "content": "hello"}


def test_tool_calls_run_and_their_results_reach_the_next_step(world: World) -> None:
    run = world.message("what is 6*7?")
    model = ScriptedModel(
        [tool_calls_reply(("calculator", {"expression": "6*7"})), text_reply("42")]
    )
    world.executor(model).execute(run.id)

    assert world.run(run.id).status == "succeeded"
    steps = world.steps(run.id)
    assert [s.decision for s in steps] == ["tools", "final"]
    (call,) = steps[0].tool_calls
    assert (call.name, call.result, call.is_error) == ("calculator", "42", False)
    second = model.requests[1].messages
    assert second[-2]["tool_calls"][0]["function"]["name"] == "calculator"
    assert second[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    kinds = types(world, run.id)
    assert kinds.index("tool.call") < kinds.index("tool.result") < kinds.index("message")
    assert model.requests[0].tools
    assert model.requests[0].tool_choice == "auto"


def test_the_agents_parallel_tool_calls_setting_reaches_the_model(world: World) -> None:
    first = world.message("what is 6*7 and 2*3?")
    model = ScriptedModel(
        [
            tool_calls_reply(("calculator", {"expression": "6*7"})),
            text_reply("42"),
            tool_calls_reply(
                ("calculator", {"expression": "6*7"}), ("calculator", {"expression": "2*3"})
            ),
            text_reply("42 and 6"),
        ]
    )
    world.executor(model).execute(first.id)
    assert model.requests[0].parallel_tool_calls is None  # unset: the model's default
    world.update_agent(parallel_tool_calls=True)
    second = world.message("and again?")
    world.executor(model).execute(second.id)
    assert model.requests[2].parallel_tool_calls is True
    (step, _) = world.steps(second.id)
    assert [c.result for c in step.tool_calls] == ["42", "6"]


def test_invalid_arguments_go_back_to_the_model_as_a_tool_error(world: World) -> None:
    run = world.message("compute")
    model = ScriptedModel(
        [
            tool_calls_reply(("calculator", '{"expr": ')),  # garbage JSON
            tool_calls_reply(("no_such_tool", {})),
            text_reply("sorry"),
        ]
    )
    world.executor(model).execute(run.id)

    assert world.run(run.id).status == "succeeded"
    steps = world.steps(run.id)
    assert [s.decision for s in steps] == ["tool_error", "tool_error", "final"]
    assert steps[0].tool_calls[0].is_error
    assert "invalid arguments" in (steps[0].tool_calls[0].result or "")
    assert "unknown tool" in (steps[1].tool_calls[0].result or "")
    assert [s.invalid_attempts for s in steps] == [1, 2, 0]


def test_garbage_every_time_fails_the_run_with_a_reason(world: World) -> None:
    run = world.message("compute")
    model = ScriptedModel([tool_calls_reply(("calculator", "not json"))] * 4)
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["type"] == "invalid_model_output"
    assert "4 unusable model outputs" in done.error["message"]
    assert types(world, run.id)[-1] == "run.failed"


def test_max_steps_ends_the_run_incomplete(world: World) -> None:
    world.update_agent(max_steps=2)
    run = world.message("loop")
    model = ScriptedModel([tool_calls_reply(("calculator", {"expression": "1+1"}))] * 2)
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert (done.status, done.stop_reason) == ("incomplete", "max_steps")
    assert done.error is not None
    assert "2 steps" in done.error["message"]
    assert len(world.steps(run.id)) == 2
    assert model.remaining == 0


def test_a_rejected_model_call_fails_the_run_not_the_worker(world: World) -> None:
    run = world.message("hi")
    model = ScriptedModel([ModelRejected("authentication")])
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert done.status == "failed"
    assert done.error == {
        "type": "model_error",
        "message": "the model server refused the configured credentials",
    }


def test_an_unknown_model_alias_fails_the_run_naming_it(world: World) -> None:
    world.update_agent(model="gpt-none")
    run = world.message("hi")
    world.executor(ScriptedModel([UnknownModel("gpt-none", ["local"])])).execute(run.id)
    assert world.run(run.id).error == {
        "type": "model_error",
        "message": "the agent's model 'gpt-none' is not served by this installation",
    }


def test_a_finished_or_held_run_is_not_executed_again(world: World) -> None:
    run = world.message("hi")
    world.executor(ScriptedModel([text_reply("one")])).execute(run.id)
    world.executor(ScriptedModel([]), owner="second").execute(run.id)  # no model call
    assert world.run(run.id).attempts == 1


def test_a_resumed_run_never_repeats_a_finished_tool_call(
    engine: Engine, new_world: WorldFactory
) -> None:
    executed: list[str] = []

    def record(label: str) -> str:
        """Record a side effect.

        Args:
            label: What to record.
        """
        executed.append(label)
        return f"recorded {label}"

    world = new_world(extra_tools=[record])
    run = world.message("record two things")
    # A worker claimed the run, persisted step 1 with two calls, finished the first, and died.
    with transaction(engine) as session:
        run_store.claim(session, run.id, "dead-worker", lease_s=0.05)
        row = run_store.owned(session, run.id, "dead-worker")
        calls = (
            CalledTool("c1", "record", '{"label": "a"}'),
            CalledTool("c2", "record", '{"label": "b"}'),
        )
        run_store.record_step(
            session,
            row,
            StepWrite(1, [], StepOutput(None, calls), "tools", 0, Usage(), 1.0),
        )
        run_store.record_tool_result(session, row, 1, "c1", "recorded a", False)
    executed.append("a")  # what the dead worker did
    time.sleep(0.1)  # its lease lapses

    model = ScriptedModel([text_reply("done")])
    world.executor(model, owner="new-worker").execute(run.id)

    assert executed == ["a", "b"]
    done = world.run(run.id)
    assert (done.status, done.attempts) == ("succeeded", 2)
    results = [(c.call_id, c.result) for c in world.steps(run.id)[0].tool_calls]
    assert results == [("c1", "recorded a"), ("c2", "recorded b")]
    events = world.events(run.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    tool_results = [e.data["call_id"] for e in events if e.type == "tool.result"]
    assert tool_results == ["c1", "c2"]
    assert [e.data["attempt"] for e in events if e.type == "run.started"] == [2]


class BlockingModel:
    """Streams a few words, then waits until its call is cancelled."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.started = threading.Event()

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        if on_delta is not None:
            on_delta("Thinking ")
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def count_tokens(self, model: str, prompts: Sequence[list[dict[str, Any]]]) -> list[int]:
        return [scripted_tokens(prompt) for prompt in prompts]


def test_cancel_aborts_an_in_flight_model_call(world: World) -> None:
    run = world.message("think hard")
    model = BlockingModel()
    worker = threading.Thread(target=world.executor(model).execute, args=(run.id,))
    worker.start()
    assert model.started.wait(10)
    with transaction(world.engine) as session:
        assert run_store.request_cancel(session, world.tenant_id, run.id).status == "running"
    worker.join(10)
    assert not worker.is_alive()
    assert model.cancelled.wait(5)
    done = world.run(run.id)
    assert (done.status, done.stop_reason) == ("cancelled", "cancelled")
    kinds = types(world, run.id)
    assert "message.delta" in kinds
    assert kinds[-1] == "run.cancelled"


def test_cancel_of_a_queued_run_ends_it_at_once(world: World) -> None:
    run = world.message("later")
    with transaction(world.engine) as session:
        cancelled = run_store.request_cancel(session, world.tenant_id, run.id)
    assert cancelled.status == "cancelled"
    world.executor(ScriptedModel([])).execute(run.id)  # a late message: nothing to do
    assert types(world, run.id) == ["run.queued", "run.cancelled"]


def test_a_queued_run_waits_for_the_one_before_it(world: World) -> None:
    first = world.message("one")
    second = world.message("two", queue=True)
    executor = world.executor(ScriptedModel([text_reply("1"), text_reply("2")]))
    executor.execute(second.id)  # delivered early: it must not overtake
    assert world.run(second.id).status == "queued"
    executor.execute(first.id)
    assert world.sent.runs == [second.id]  # the finisher sends the next one
    executor.execute(second.id)
    assert world.run(second.id).output == "2"
    context = world.steps(second.id)[0].context
    assert {"role": "assistant", "content": "1"} in context


def test_an_unknown_tool_in_the_spec_fails_the_run_clearly(world: World) -> None:
    world.update_agent(tools=["calculator", "not_installed"])
    run = world.message("hi")
    world.executor(ScriptedModel([])).execute(run.id)
    done = world.run(run.id)
    assert done.error is not None
    assert done.error["type"] == "configuration_error"
    assert "not_installed" in done.error["message"]


class SummarisingModel:
    """Answers summary requests with a summary of what it was given, anything else with a
    numbered answer; records every request."""

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        self.requests.append(request)
        if request.messages[0]["content"] == SUMMARY_INSTRUCTIONS:
            body = request.messages[-1]["content"]
            seen = sorted(set(re.findall(r"message (\d)", body)))
            return text_reply(f"SUMMARY of messages {','.join(seen)}")
        return text_reply(f"answer to {request.messages[-1]['content'][:9]}")

    async def count_tokens(self, model: str, prompts: Sequence[list[dict[str, Any]]]) -> list[int]:
        return [scripted_tokens(prompt) for prompt in prompts]


def test_history_over_the_window_is_summarised_not_dropped(
    new_world: WorldFactory, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        inference_context=900,
        agent_max_output_tokens=64,
    )
    world = new_world(settings)
    world.update_agent(tools=[], memory=MemoryPolicy(recall_k=0, extract_facts=False))
    model = SummarisingModel()
    for n in range(6):
        run = world.message(f"message {n}: " + "lorem ipsum dolor " * 30)
        world.executor(model).execute(run.id)
        assert world.run(run.id).status == "succeeded"
    last = world.message("what did we discuss?")
    world.executor(model).execute(last.id)

    assert any(r.messages[0]["content"] == SUMMARY_INSTRUCTIONS for r in model.requests)
    context = world.steps(last.id)[0].context
    with transaction(world.engine) as session:
        chat = get_session(session, world.tenant_id, world.chat.id)
    assert chat.summary.startswith("SUMMARY of messages 0")
    assert "Summary of the earlier conversation:\n" + chat.summary in context[0]["content"]
    # Every earlier message is either in the context or covered by the summary.
    with transaction(world.engine) as session:
        history = list_messages(session, world.tenant_id, world.chat.id)
    shown = {m["content"] for m in context}
    for message in history:
        if message.run_id != last.id:
            assert message.seq <= chat.summary_through or message.content in shown
    assert context[-1] == {"role": "user", "content": "what did we discuss?"}
    assert context[-2]["content"].startswith("answer to message 5")


def test_an_exchange_is_remembered_in_the_users_next_session(world: World) -> None:
    run = world.message("my favourite colour is teal")
    world.executor(ScriptedModel([text_reply("Noted: teal.")])).execute(run.id)

    later = world.new_session(user_id="user-1")
    run2 = world.message("what is my favourite colour?", chat=later)
    world.executor(ScriptedModel([text_reply("teal")])).execute(run2.id)
    system = world.steps(run2.id)[0].context[0]["content"]
    assert "my favourite colour is teal" in system

    stranger = world.new_session(user_id="user-2")
    run3 = world.message("what is my favourite colour?", chat=stranger)
    world.executor(ScriptedModel([text_reply("no idea")])).execute(run3.id)
    assert "teal" not in world.steps(run3.id)[0].context[0]["content"]


def test_core_memory_edits_show_in_the_next_step(world: World) -> None:
    user = world.chat.user_id
    world.memory.set_block(world.tenant_id, world.agent_id, "human", "Name: unknown", user_id=user)
    run = world.message("I am Ada")
    model = ScriptedModel(
        [
            tool_calls_reply(
                ("core_memory_replace", {"label": "human", "old": "unknown", "new": "Ada"})
            ),
            text_reply("Hello Ada"),
        ]
    )
    world.executor(model).execute(run.id)
    assert world.run(run.id).status == "succeeded"
    assert "Name: Ada" in model.requests[1].messages[0]["content"]
    assert "Name: unknown" in model.requests[0].messages[0]["content"]


def test_required_tool_choice_applies_to_the_first_step_only(world: World) -> None:
    world.update_agent(tool_choice="required")
    run = world.message("6*7")
    model = ScriptedModel(
        [tool_calls_reply(("calculator", {"expression": "6*7"})), text_reply("42")]
    )
    world.executor(model).execute(run.id)
    assert [r.tool_choice for r in model.requests] == ["required", "auto"]


def test_tool_choice_none_offers_no_tools(world: World) -> None:
    world.update_agent(tool_choice="none")
    run = world.message("hi")
    model = ScriptedModel([text_reply("hello")])
    world.executor(model).execute(run.id)
    assert (model.requests[0].tools, model.requests[0].tool_choice) == (None, None)


def test_a_required_tool_call_cut_off_is_retried_as_required(world: World) -> None:
    world.update_agent(tool_choice="required")
    run = world.message("6*7")
    cut_off = ChatResult(
        content='{"name": "calculator", "arguments": {"expression": "6*7 = ', finish_reason="length"
    )
    model = ScriptedModel(
        [cut_off, tool_calls_reply(("calculator", {"expression": "6*7"})), text_reply("42")]
    )
    world.executor(model).execute(run.id)

    assert world.run(run.id).output == "42"
    assert [r.tool_choice for r in model.requests] == ["required", "required", "auto"]
    assert model.requests[1].messages[-1] == {"role": "user", "content": CUT_OFF_MESSAGE}
    assert [s.decision for s in world.steps(run.id)] == ["empty", "tools", "final"]
