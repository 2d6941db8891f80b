"""Batches on the real embedded Postgres, with runs driven by the executor over a scripted
model: admission up to the concurrency, outcomes recorded with the run's end, the retry
policy, cancellation, and the sweeper's safety net."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from agents.batches import lifecycle as batches
from agents.batches import store as batch_store
from agents.batches.store import settle
from agents.errors import INTERNAL_ERROR_MESSAGE
from agents.records import Batch, BatchItem, CalledTool, NewBatch, NewBatchItem, StepOutput
from agents.records import Usage as StepUsage
from agents.runs import store as run_store
from agents.runs.store import StepWrite
from agents.tables import BatchItemRow
from agents.tools.context import ToolContext
from agents.tools.registry import tool
from agents.worker.sweeper import sweep_once
from core.db import transaction
from core.errors import NotFound
from inference.client.model_client import ChatResult, Usage
from inference.client.scripted import ScriptedModel, text_reply, tool_calls_reply
from tests.agents.conftest import World, WorldFactory
from tests.api.support import RecordingQueue


def create(
    world: World, count: int, *, concurrency: int = 2, max_attempts: int = 2
) -> tuple[Batch, list[uuid.UUID]]:
    """A batch of `count` items on the world's agent; its first runs are in world.sent."""
    items = [
        NewBatchItem(f"question {i}", user_id=f"u{i}", metadata={"i": i}) for i in range(count)
    ]
    with transaction(world.engine) as session:
        batch, started = batches.create_batch(
            session,
            world.tenant_id,
            NewBatch(
                agent_id=world.agent_id,
                items=tuple(items),
                concurrency=concurrency,
                max_attempts=max_attempts,
                metadata={"job": "test"},
            ),
        )
    world.sent.runs.extend(started)
    return batch, started


def get(world: World, batch_id: uuid.UUID) -> Batch:
    with transaction(world.engine) as session:
        return batch_store.get_batch(session, world.tenant_id, batch_id)


def items(world: World, batch_id: uuid.UUID) -> list[BatchItemRow]:
    with transaction(world.engine) as session:
        return list(
            session.scalars(
                select(BatchItemRow)
                .where(BatchItemRow.batch_id == batch_id)
                .order_by(BatchItemRow.position)
            ).all()
        )


def results(world: World, batch_id: uuid.UUID) -> list[BatchItem]:
    with transaction(world.engine) as session:
        return batch_store.finished_items(session, world.tenant_id, batch_id)


def drain(world: World, model: ScriptedModel) -> int:
    """Execute every run sent so far and those their ends send; returns how many ran."""
    executor = world.executor(model)
    done = 0
    while world.sent.runs:
        executor.execute(world.sent.runs.pop(0))
        done += 1
    return done


def answer(text: str, prompt: int = 10, completion: int = 5) -> ChatResult:
    return ChatResult(
        content=text,
        model="scripted",
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=0.01),
    )


def test_the_policy_retries_only_retryable_failures_while_attempts_remain() -> None:
    def outcome(status: str, error: str | None, attempts: int = 1, cancel: bool = False) -> str:
        return settle(status, error, attempts=attempts, max_attempts=2, cancel_requested=cancel)

    assert outcome("succeeded", None) == "succeeded"
    assert outcome("cancelled", None) == "cancelled"
    for retryable in ("worker_lost", "internal_error"):
        assert outcome("failed", retryable) == "pending"
        assert outcome("failed", retryable, attempts=2) == "failed"
        assert outcome("failed", retryable, cancel=True) == "failed"
    # A model error is a rejection that would repeat (an outage never fails a run).
    for final in ("invalid_model_output", "configuration_error", "model_error"):
        assert outcome("failed", final) == "failed"
    assert outcome("incomplete", "max_steps") == "failed"


def test_a_batch_admits_at_most_its_concurrency_and_completes(world: World) -> None:
    batch, started = create(world, 5, concurrency=2)

    assert len(started) == 2
    assert batch.status == "running"
    assert (batch.counts.pending, batch.counts.queued, batch.counts.total) == (3, 2, 5)
    rows = items(world, batch.id)
    assert [r.status for r in rows] == ["queued", "queued", "pending", "pending", "pending"]
    assert [r.run_id for r in rows[:2]] == started
    with transaction(world.engine) as session:
        assert batches.dispatch(session, batch.id) == []  # no free slot

    first = world.run(started[0])
    assert first.input == "question 0"
    assert first.metadata == {"i": 0}
    assert first.session_id != world.run(started[1]).session_id  # a session per item

    executor = world.executor(ScriptedModel([answer(f"answer {i}") for i in range(5)]))
    executor.execute(world.sent.runs.pop(0))
    assert len(world.sent.runs) == 2  # the other first run, and item 2 admitted in its slot
    mid = get(world, batch.id)
    assert (mid.counts.succeeded, mid.counts.queued, mid.counts.pending) == (1, 2, 2)
    while world.sent.runs:
        executor.execute(world.sent.runs.pop(0))
        assert get(world, batch.id).counts.queued <= 2

    done = get(world, batch.id)
    assert done.status == "completed"
    assert done.finished_at is not None
    assert (done.counts.succeeded, done.counts.total) == (5, 5)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (50, 25)
    assert done.usage.cost_usd == pytest.approx(0.05)
    finished = results(world, batch.id)
    assert [r.position for r in finished] == [0, 1, 2, 3, 4]
    assert [r.output for r in finished] == [f"answer {i}" for i in range(5)]
    assert all(r.attempts == 1 and r.error is None for r in finished)
    assert finished[3].user_id == "u3"


def test_a_running_item_counts_as_running(world: World) -> None:
    batch, started = create(world, 3, concurrency=2)
    with transaction(world.engine) as session:
        assert run_store.claim(session, started[0], "elsewhere", 30.0) is not None

    counts = get(world, batch.id).counts
    assert (counts.pending, counts.queued, counts.running) == (1, 1, 1)


def test_a_retryable_failure_is_retried_in_a_new_run_then_recorded(world: World) -> None:
    batch, started = create(world, 1, concurrency=1, max_attempts=2)
    model = ScriptedModel([RuntimeError("a bug"), RuntimeError("the bug again")])

    executor = world.executor(model)
    executor.execute(world.sent.runs.pop(0))
    (retry,) = world.sent.runs  # back to pending, and admitted again at once
    assert retry != started[0]
    (item,) = items(world, batch.id)
    assert (item.status, item.attempts, item.run_id) == ("queued", 2, retry)
    assert item.error is not None
    assert item.error["type"] == "internal_error"
    assert world.run(retry).session_id != world.run(started[0]).session_id  # a fresh session
    assert world.run(retry).previous_run_id == started[0]

    drain(world, model)
    (result,) = results(world, batch.id)
    assert (result.status, result.attempts, result.run_id) == ("failed", 2, retry)
    assert result.error is not None
    assert result.error == {"type": "internal_error", "message": INTERNAL_ERROR_MESSAGE}
    done = get(world, batch.id)
    assert done.status == "completed"
    assert done.counts.failed == 1


def test_a_retry_that_succeeds_keeps_the_usage_of_both_attempts(world: World) -> None:
    batch, _ = create(world, 1, concurrency=1)
    drain(world, ScriptedModel([RuntimeError("blip"), answer("fine", 7, 3)]))

    (result,) = results(world, batch.id)
    assert (result.status, result.output, result.attempts) == ("succeeded", "fine", 2)
    assert result.error is None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 3)


def test_a_retry_continues_its_predecessor_and_never_repeats_a_tool_effect(
    new_world: WorldFactory,
) -> None:
    effects: list[str | None] = []

    def send_email(ctx: ToolContext, to: str) -> str:
        """Send an email.

        Args:
            to: Address.
        """
        effects.append(ctx.idempotency_key)
        return f"sent to {to}"

    world = new_world(extra_tools=[send_email])
    batch, (first,) = create(world, 1, concurrency=1, max_attempts=2)
    model = ScriptedModel(
        [
            tool_calls_reply(("send_email", {"to": "ann@example.com"})),
            RuntimeError("a bug after the email went out"),
            answer("emailed ann"),
        ]
    )
    drain(world, model)

    (result,) = results(world, batch.id)
    assert (result.status, result.output, result.attempts) == ("succeeded", "emailed ann", 2)
    assert effects == [f"{first}:1:call_1"]  # once, by the first run
    retry = world.run(result.run_id or first)
    assert (retry.previous_run_id, retry.lineage) == (first, first)
    (step1, step2) = world.steps(retry.id)
    assert (step1.tool_calls[0].result, step2.decision) == ("sent to ann@example.com", "final")
    # The retry's first model call saw the email's result: it continued, it did not restart.
    assert model.requests[2].messages[-1]["content"] == "sent to ann@example.com"
    queued = world.events(retry.id)[0]
    assert (queued.type, queued.data["previous_run_id"]) == ("run.queued", str(first))


def test_a_retry_treats_a_call_its_predecessor_left_unfinished_by_its_policy(
    new_world: WorldFactory,
) -> None:
    keys: list[str | None] = []

    def charge(ctx: ToolContext, cents: int) -> str:
        """Charge a card (the provider dedupes by idempotency key).

        Args:
            cents: Amount.
        """
        keys.append(ctx.idempotency_key)
        return f"charged {cents}"

    world = new_world(extra_tools=[tool(charge, idempotent=True)])
    world.update_agent(max_steps=5)
    batch, (first,) = create(world, 1, concurrency=1, max_attempts=2)
    with transaction(world.engine) as session:  # the first run's worker died mid-call, for good
        run_store.claim(session, first, "dead", lease_s=30)
        row = run_store.owned(session, first, "dead")
        output = StepOutput(None, (CalledTool("c1", "charge", '{"cents": 100}'),))
        step = StepWrite(1, [], output, "tools", 0, StepUsage(), 1.0)
        run_store.record_step(session, row, step)
        run_store.mark_started(session, first, 1, "c1")
        run_store.finish(
            session,
            row,
            "failed",
            stop_reason="worker_lost",
            error={"type": "worker_lost", "message": "gone"},
        )
    world.sent.runs.clear()
    assert batches.advance(world.engine, batch.id, world.sent.runs.append) == 1
    drain(world, ScriptedModel([answer("charged once")]))

    (result,) = results(world, batch.id)
    assert (result.status, result.attempts) == ("succeeded", 2)
    assert keys == [f"{first}:1:c1"]  # re-run (idempotent) under the lineage's key
    (call,) = world.steps(result.run_id or first)[0].tool_calls
    assert (call.result, call.starts) == ("charged 100", 2)


def test_failures_that_would_repeat_are_not_retried(world: World) -> None:
    world.update_agent(max_steps=1)
    batch, _ = create(world, 1, concurrency=1)
    drain(world, ScriptedModel([tool_calls_reply(("calculator", {"expression": "1+1"}))]))
    (result,) = results(world, batch.id)
    assert (result.status, result.attempts) == ("failed", 1)
    assert result.error is not None
    assert result.error["type"] == "max_steps"

    world.update_agent(tools=["no_such_tool"])
    broken, _ = create(world, 1, concurrency=1)
    assert drain(world, ScriptedModel([])) == 1
    (result,) = results(world, broken.id)
    assert (result.status, result.attempts) == ("failed", 1)
    assert result.error is not None
    assert result.error["type"] == "configuration_error"


def test_cancel_stops_pending_and_queued_items_and_running_runs(world: World) -> None:
    batch, started = create(world, 4, concurrency=2)
    running, queued = started
    with transaction(world.engine) as session:  # a worker holds it; its lease lapses at once
        assert run_store.claim(session, running, "dead-worker", 0.0) is not None

    with transaction(world.engine) as session:
        cancelled = batches.cancel_batch(session, world.tenant_id, batch.id)
    assert cancelled.status == "running"  # one run is still running
    assert cancelled.cancel_requested
    assert (cancelled.counts.running, cancelled.counts.cancelled) == (1, 3)
    assert world.run(queued).status == "cancelled"
    assert world.run(running).cancel_requested

    world.sent.runs[:] = [running]
    drain(world, ScriptedModel([]))  # it hears the cancel before its first step
    done = get(world, batch.id)
    assert done.status == "cancelled"
    assert done.finished_at is not None
    assert done.counts.cancelled == 4
    assert world.sent.runs == []  # nothing admitted after the cancel
    assert [r.status for r in results(world, batch.id)] == ["cancelled"] * 4

    with transaction(world.engine) as session:  # idempotent
        assert batches.cancel_batch(session, world.tenant_id, batch.id).status == "cancelled"


def test_a_batch_of_another_tenant_is_not_found(world: World, new_world: WorldFactory) -> None:
    batch, _ = create(world, 1)
    other = new_world()
    with transaction(world.engine) as session, pytest.raises(NotFound):
        batch_store.get_batch(session, other.tenant_id, batch.id)
    with transaction(world.engine) as session, pytest.raises(NotFound):
        batches.cancel_batch(session, other.tenant_id, batch.id)
    with transaction(world.engine) as session, pytest.raises(NotFound):  # another's agent
        batches.create_batch(
            session,
            other.tenant_id,
            NewBatch(
                agent_id=world.agent_id,
                items=tuple([NewBatchItem("hi")]),
                concurrency=1,
                max_attempts=1,
                metadata={},
            ),
        )


def test_the_sweeper_admits_items_when_no_dispatch_followed_a_run_end(world: World) -> None:
    batch, started = create(world, 3, concurrency=1)
    world.sent.runs.clear()
    with transaction(world.engine) as session:  # a run of it cancelled on its own
        run_store.request_cancel(session, world.tenant_id, started[0])
    assert [r.status for r in items(world, batch.id)] == ["cancelled", "pending", "pending"]

    queue = RecordingQueue()
    assert sweep_once(world.engine, queue, interval_s=30) == 1
    (admitted,) = queue.runs
    assert world.run(admitted).input == "question 1"
    assert sweep_once(world.engine, queue, interval_s=30) == 0  # its slot is taken

    executor = world.executor(ScriptedModel([text_reply("a"), text_reply("b")]))
    executor.execute(admitted)
    executor.execute(world.sent.runs.pop(0))
    done = get(world, batch.id)
    assert done.status == "completed"  # a cancelled item is final; the batch was not cancelled
    assert (done.counts.cancelled, done.counts.succeeded) == (1, 2)


def test_the_sweeper_ends_a_batch_whose_last_run_ended_without_a_dispatch(world: World) -> None:
    batch, (only,) = create(world, 1, concurrency=1)
    with transaction(world.engine) as session:
        assert run_store.claim(session, only, "w", 30.0) is not None
    with transaction(world.engine) as session:  # the end, but no advance after it
        row = run_store.owned(session, only, "w")
        run_store.finish(session, row, "succeeded", stop_reason="answer", output="ok")
    assert get(world, batch.id).status == "running"

    assert sweep_once(world.engine, RecordingQueue(), interval_s=30) == 0
    done = get(world, batch.id)
    assert done.status == "completed"
    assert done.counts.succeeded == 1
