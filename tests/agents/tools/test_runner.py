"""Exactly-once tool effects (agents/tools/runner.py): the calls of one reply run at the same
time, at most `run_tool_concurrency` at once; a call is marked started before its tool
runs; a resumed run re-runs a started, unfinished call only when its tool is idempotent, with
the same idempotency key, and otherwise answers it "outcome unknown"; a core memory edit run
twice changes the block once; a tool that outlives the lease never runs twice at once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from agents.records import CalledTool, StepOutput, Usage
from agents.runs import store as run_store
from agents.runs.store import StepWrite
from agents.tools.context import ToolContext
from agents.tools.registry import Tool, tool
from agents.tools.runner import OUTCOME_UNKNOWN, idempotency_key
from core.config import Settings
from core.db import transaction
from inference.client.scripted import ScriptedModel, text_reply, tool_calls_reply
from tests.agents.conftest import World, WorldFactory
from tests.agents.pg_proxy import PgProxy


@dataclass
class Effects:
    """What tools did, by idempotency key, with when each execution ran."""

    keys: list[str | None] = field(default_factory=list)
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def recording_tools(effects: Effects) -> list[Tool]:
    def send_email(ctx: ToolContext, to: str) -> str:
        """Send an email (not idempotent).

        Args:
            to: Address.
        """
        effects.keys.append(ctx.idempotency_key)
        return f"sent to {to}"

    def charge_card(ctx: ToolContext, cents: int) -> str:
        """Charge a card; the payment provider dedupes by idempotency key.

        Args:
            cents: Amount.
        """
        effects.keys.append(ctx.idempotency_key)
        return f"charged {cents}"

    return [tool(send_email), tool(charge_card, idempotent=True)]


def died_mid_call(
    engine: Engine, run_id: uuid.UUID, name: str, arguments: str, *, started: bool = True
) -> None:
    """A worker claimed the run, stored step 1 with one call, marked it started (its tool may
    have run), and died before storing the result."""
    output = StepOutput(content=None, tool_calls=(CalledTool("c1", name, arguments),))
    with transaction(engine) as session:
        run_store.claim(session, run_id, "dead-worker", lease_s=0.05)
        row = run_store.owned(session, run_id, "dead-worker")
        run_store.record_step(
            session,
            row,
            StepWrite(
                1,
                [],
                output,
                "tools",
                0,
                Usage(),
                1.0,
            ),
        )
        if started:
            run_store.mark_started(session, run_id, 1, "c1")
    time.sleep(0.1)  # its lease lapses


def test_a_call_is_marked_started_before_its_tool_runs(new_world: WorldFactory) -> None:
    seen: list[tuple[object, int]] = []
    holder: dict[str, World] = {}

    def look(ctx: ToolContext) -> str:
        """Look at the call's own row while it runs."""
        (call,) = holder["world"].steps(ctx.run_id or uuid.uuid4())[0].tool_calls
        seen.append((call.started_at, call.starts))
        return "looked"

    world = new_world(extra_tools=[look])
    holder["world"] = world
    run = world.message("look")
    world.executor(ScriptedModel([tool_calls_reply(("look", {})), text_reply("ok")])).execute(
        run.id
    )
    assert world.run(run.id).status == "succeeded"
    ((started_at, starts),) = seen
    assert started_at is not None  # committed before the tool ran
    assert starts == 1


def test_a_started_call_of_a_non_idempotent_tool_is_not_run_again(
    new_world: WorldFactory,
) -> None:
    effects = Effects()
    world = new_world(extra_tools=recording_tools(effects))
    run = world.message("email bob")
    died_mid_call(world.engine, run.id, "send_email", '{"to": "bob@example.com"}')

    model = ScriptedModel([text_reply("I could not tell whether the email went out.")])
    world.executor(model, owner="new-worker").execute(run.id)

    assert effects.keys == []  # never run twice: the dead worker may have sent it
    assert world.run(run.id).status == "succeeded"
    (call,) = world.steps(run.id)[0].tool_calls
    assert (call.result, call.is_error, call.starts) == (OUTCOME_UNKNOWN, True, 1)
    tool_message = model.requests[0].messages[-1]
    assert tool_message == {"role": "tool", "tool_call_id": "c1", "content": OUTCOME_UNKNOWN}


def test_a_call_that_never_started_runs_normally_on_resume(new_world: WorldFactory) -> None:
    effects = Effects()
    world = new_world(extra_tools=recording_tools(effects))
    run = world.message("email bob")
    died_mid_call(world.engine, run.id, "send_email", '{"to": "bob@example.com"}', started=False)
    world.executor(ScriptedModel([text_reply("sent")]), owner="new-worker").execute(run.id)
    assert effects.keys == [f"{run.id}:1:c1"]
    assert world.steps(run.id)[0].tool_calls[0].result == "sent to bob@example.com"


def test_a_started_call_of_an_idempotent_tool_is_run_again_with_the_same_key(
    new_world: WorldFactory,
) -> None:
    effects = Effects()
    world = new_world(extra_tools=recording_tools(effects))
    run = world.message("charge 5 dollars")
    died_mid_call(world.engine, run.id, "charge_card", '{"cents": 500}')
    key = f"{run.id}:1:c1"
    effects.keys.append(key)  # what the dead worker's execution passed to the provider

    world.executor(ScriptedModel([text_reply("charged")]), owner="new-worker").execute(run.id)

    assert effects.keys == [key, key]  # the provider sees the same key and dedupes
    (call,) = world.steps(run.id)[0].tool_calls
    assert (call.result, call.is_error, call.starts) == ("charged 500", False, 2)
    assert idempotency_key(world.run(run.id), 1, "c1") == key


def test_a_core_memory_append_run_again_changes_the_block_once(world: World) -> None:
    user = world.chat.user_id
    world.memory.set_block(world.tenant_id, world.agent_id, "human", "Name: Ada", user_id=user)
    run = world.message("I like tea")
    died_mid_call(
        world.engine, run.id, "core_memory_append", '{"label": "human", "content": "Likes tea"}'
    )
    # The dead worker's execution did append before it died.
    world.memory.append_to_block(
        world.tenant_id,
        world.agent_id,
        "human",
        "Likes tea",
        user_id=user,
        edit_key=f"{run.id}:1:c1",
    )

    world.executor(ScriptedModel([text_reply("noted")]), owner="new-worker").execute(run.id)

    block = world.memory.get_block(world.tenant_id, world.agent_id, "human", user_id=user)
    assert block.value == "Name: Ada\nLikes tea"  # once, not twice
    (call,) = world.steps(run.id)[0].tool_calls
    assert (call.starts, call.is_error) == (2, False)  # re-run: the tool is idempotent
    assert (call.result or "").startswith("appended")


def slow_tool(effects: Effects, seconds: float) -> Tool:
    async def long_task(ctx: ToolContext, label: str) -> str:
        """A long task an outside system dedupes by idempotency key.

        Args:
            label: Anything.
        """
        begun = time.monotonic()
        try:
            await asyncio.sleep(seconds)
        finally:
            with effects.lock:
                effects.spans.append((begun, time.monotonic(), ctx.idempotency_key or ""))
        return f"done {label}"

    return tool(long_task, idempotent=True, timeout_s=60)


def keep_trying(world: World, run_id: uuid.UUID, stop: threading.Event) -> threading.Thread:
    """A second worker that is sent the run again and again, as the sweeper would."""
    executor = world.executor(ScriptedModel([text_reply("finished by the second")]), owner="b")

    def loop() -> None:
        while not stop.is_set() and not world.run(run_id).finished:
            executor.execute(run_id)
            time.sleep(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_a_tool_that_outlives_the_lease_is_not_run_twice_while_the_lease_is_renewed(
    new_world: WorldFactory,
) -> None:
    effects = Effects()
    world = new_world(extra_tools=[slow_tool(effects, 4.0)])  # the lease is 2 s
    run = world.message("go")
    model = ScriptedModel([tool_calls_reply(("long_task", {"label": "x"})), text_reply("done")])
    stop = threading.Event()
    first = threading.Thread(target=world.executor(model, owner="a").execute, args=(run.id,))
    first.start()
    second = keep_trying(world, run.id, stop)
    first.join(30)
    stop.set()
    second.join(10)

    done = world.run(run.id)
    assert (done.status, done.output, done.attempts) == ("succeeded", "done", 1)
    assert len(effects.spans) == 1


def test_a_worker_cut_off_its_database_stops_the_tool_before_another_worker_starts_it(
    new_world: WorldFactory,
    database_url: str,
    tmp_path: Path,
    pg_proxy: PgProxy,
    proxied_engine: Engine,
) -> None:
    effects = Effects()
    settings = Settings(
        home=tmp_path / "home", database_url=database_url, run_lease_s=2.0, db_retry_s=1.0
    )
    world = new_world(settings, extra_tools=[slow_tool(effects, 4.0)])
    run = world.message("go")
    model = ScriptedModel([tool_calls_reply(("long_task", {"label": "x"}))])
    first = threading.Thread(
        target=world.executor(model, owner="a", engine=proxied_engine).execute, args=(run.id,)
    )
    first.start()
    deadline = time.monotonic() + 10
    while not (world.steps(run.id) and world.steps(run.id)[0].tool_calls[0].started_at):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pg_proxy.cut()  # worker a can no longer renew its lease; its tool is mid-way
    stop = threading.Event()
    second = keep_trying(world, run.id, stop)
    first.join(30)
    second.join(30)
    stop.set()

    done = world.run(run.id)
    assert (done.status, done.output) == ("succeeded", "finished by the second")
    assert done.attempts == 2
    (a, b) = sorted(effects.spans)
    assert a[1] <= b[0]  # a's execution had ended before b's began
    assert a[1] - a[0] < 3.0  # a's was stopped, not run to its end
    assert a[2] == b[2] == f"{run.id}:1:call_1"  # one call, one key
    (call,) = world.steps(run.id)[0].tool_calls
    assert (call.result, call.starts) == ("done x", 2)


def meeting_tools() -> list[Tool]:
    """Two async tools that each finish only once the other has begun: they end only when
    run at the same time (a timeout turns a serial run into a tool error, not a hang)."""
    arrived: dict[str, asyncio.Event] = {}

    def event(name: str) -> asyncio.Event:
        return arrived.setdefault(name, asyncio.Event())

    def meeter(me: str, other: str) -> Tool:
        async def meet(ctx: ToolContext) -> str:
            """Wait for the other side."""
            event(me).set()
            await asyncio.wait_for(event(other).wait(), timeout=3)
            return f"{me} met {other}"

        return tool(meet, name=me, timeout_s=10)

    return [meeter("left", "right"), meeter("right", "left")]


def test_the_calls_of_one_reply_run_at_the_same_time(new_world: WorldFactory) -> None:
    world = new_world(extra_tools=meeting_tools())
    run = world.message("meet")
    model = ScriptedModel([tool_calls_reply(("left", {}), ("right", {})), text_reply("met")])
    world.executor(model).execute(run.id)

    assert world.run(run.id).status == "succeeded"
    left, right = world.steps(run.id)[0].tool_calls
    assert (left.result, left.is_error) == ("left met right", False)
    assert (right.result, right.is_error) == ("right met left", False)
    assert (left.starts, right.starts) == (1, 1)
    results = [e.data["call_id"] for e in world.events(run.id) if e.type == "tool.result"]
    assert sorted(results) == ["call_1", "call_2"]  # each stored once
    sent = model.requests[1].messages
    assert [m.get("tool_call_id") for m in sent[-2:]] == ["call_1", "call_2"]  # model's order


def test_at_most_run_tool_concurrency_calls_run_at_once(
    new_world: WorldFactory, loop_settings: Settings
) -> None:
    effects = Effects()
    settings = loop_settings.model_copy(update={"run_tool_concurrency": 2})
    world = new_world(settings, extra_tools=[slow_tool(effects, 0.3)])
    run = world.message("five tasks")
    calls = [("long_task", {"label": str(i)}) for i in range(5)]
    world.executor(ScriptedModel([tool_calls_reply(*calls), text_reply("done")])).execute(run.id)

    assert world.run(run.id).status == "succeeded"
    spans = sorted(effects.spans)
    most = max(sum(1 for b, e, _ in spans if b <= start < e) for start, _, _ in spans)
    assert most == 2
    assert [c.result for c in world.steps(run.id)[0].tool_calls] == [f"done {i}" for i in range(5)]


def test_one_at_a_time_when_the_limit_is_one(
    new_world: WorldFactory, loop_settings: Settings
) -> None:
    settings = loop_settings.model_copy(update={"run_tool_concurrency": 1})
    world = new_world(settings, extra_tools=meeting_tools())
    run = world.message("meet")
    model = ScriptedModel([tool_calls_reply(("left", {}), ("right", {})), text_reply("no")])
    world.executor(model).execute(run.id)

    left, right = world.steps(run.id)[0].tool_calls
    assert left.is_error  # waited for a partner that had not started
    assert "TimeoutError" in (left.result or "")
    assert right.result == "right met left"  # left had arrived before it
