"""The cleaner keeps run events, step contexts, block versions and the database broker's
consumed messages bounded, never touches a queued or running run, and runs safely in several
workers at once. All on the real Postgres, with real kombu messages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from kombu.connection import Connection
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from agents.records import StepOutput, Usage
from agents.runs import store as run_store
from agents.runs.events import MessageDelta, RunStarted, StepStarted, append_event
from agents.tables import RunRow
from agents.tools.runner import idempotency_key
from agents.worker.cleaner import LOCK_ID, Cleaned, Cleaner, Retention
from agents.worker.queue import broker_url
from core.config import Settings
from core.db import transaction
from inference.client.scripted import ScriptedModel, text_reply
from memory import blocks
from tests.agents.conftest import World

OWNER = "test-worker"
DELTAS_PER_RUN = 5
LIFECYCLE_PER_RUN = 5  # run.queued, run.started, step.started, message, run.succeeded
PROMPT = [{"role": "system", "content": "You help. " * 200}, {"role": "user", "content": "hi"}]

EVERYTHING = Retention(
    batch_rows=97,  # not a divisor of the rows made: the last batch of each kind is partial
    broker_consumed_s=0.0,
    delta_events_s=0.0,
    step_context_s=0.0,
    block_versions=10,
)
"""Keep as little as the cleaner can (the defaults keep minutes to days)."""


@pytest.fixture
def broker(loop_settings: Settings, database_url: str) -> Iterator[Connection]:
    """A kombu connection to the database broker the embedded default uses."""
    url = broker_url(loop_settings, database_url)
    with Connection(url) as conn:  # type: ignore[no-untyped-call] # kombu is untyped
        yield conn


def start(session: Session, world: World, content: str) -> RunRow:
    """A new run of the world's session, claimed by OWNER, that has streamed its deltas and
    recorded its one step."""
    run = run_store.create_run(session, world.tenant_id, world.chat.id, content).run
    assert run_store.claim(session, run.id, OWNER, 60.0) is not None
    append_event(session, world.tenant_id, run.id, RunStarted(attempt=1))
    append_event(session, world.tenant_id, run.id, StepStarted(step=1, attempt=1))
    for n in range(DELTAS_PER_RUN):
        delta = MessageDelta(step=1, attempt=1, delta=f"w{n} ")
        append_event(session, world.tenant_id, run.id, delta)
    row = run_store.owned(session, run.id, OWNER)
    write = run_store.StepWrite(
        step=1,
        context=PROMPT,
        output=StepOutput(content="done", finish_reason="stop"),
        decision="final",
        invalid_attempts=0,
        usage=Usage(prompt_tokens=10, completion_tokens=2),
        model_ms=1.0,
    )
    run_store.record_step(session, row, write)
    return row


def finished_runs(world: World, count: int) -> list[uuid.UUID]:
    """`count` runs that ended with an answer, each of which also edited a block."""
    made = []
    with transaction(world.engine) as session:
        for n in range(count):
            row = start(session, world, f"question {n}")
            run_store.finish(session, row, "succeeded", stop_reason="answer", output=f"answer {n}")
            blocks.set_block(
                session,
                world.tenant_id,
                world.agent_id,
                "notes",
                f"note {n} of {row.id}",
                default_limit=5000,
            )
            made.append(row.id)
    return made


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def deltas(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM run_events WHERE type = 'message.delta'")


def full_contexts(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM run_steps WHERE context <> '[]'::jsonb")


def versions(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM memory_block_versions")


def broker_rows(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM kombu_message")


# kombu's own table models use a loader strategy SQLAlchemy 2.1 deprecates.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_the_cleaner_keeps_table_sizes_flat_over_1000_runs(
    world: World, broker: Connection
) -> None:
    cleaner = Cleaner(world.engine, EVERYTHING)
    waiting = broker.SimpleQueue("agentmill-cleaner-waiting")  # type: ignore[no-untyped-call]
    for n in range(3):
        waiting.put({"pending": n})  # sent, never taken: must survive every pass
    queue = broker.SimpleQueue("agentmill-cleaner-test")  # type: ignore[no-untyped-call]
    made = 0
    for _ in range(10):
        for n in range(100):
            queue.put({"run": n})
            message = queue.get(block=False)  # taken: kombu marks the row invisible
            message.ack()
        made += len(finished_runs(world, 100))
        assert deltas(world.engine) == 100 * DELTAS_PER_RUN  # only this batch's: flat
        assert broker_rows(world.engine) == 3 + 100

        cleaned = cleaner.run_once()

        assert not cleaned.skipped
        assert cleaned.delta_events == 100 * DELTAS_PER_RUN
        assert cleaned.step_contexts == 100
        assert cleaned.broker_messages == 100
        assert deltas(world.engine) == 0
        assert full_contexts(world.engine) == 0
        assert broker_rows(world.engine) == 3
        assert versions(world.engine) == 10
        # What stays grows with the runs only by their lifecycle events (a few rows each).
        assert count(world.engine, "SELECT count(*) FROM run_events") == made * LIFECYCLE_PER_RUN
        assert count(world.engine, "SELECT count(*) FROM run_steps") == made
    assert made == 1000
    assert count(world.engine, "SELECT count(*) FROM kombu_message WHERE visible") == 3

    # What the routes read is still whole: the history's newest versions, the answer events.
    with transaction(world.engine) as session:
        history = blocks.block_history(session, world.tenant_id, world.agent_id, "notes")
        block = blocks.get_block(session, world.tenant_id, world.agent_id, "notes")
    assert [v.version for v in history] == list(range(991, 1001))
    assert history[-1].value == block.value
    last = world.run(last_run(world))
    types = [e.type for e in world.events(last.id)]
    assert types == ["run.queued", "run.started", "step.started", "message", "run.succeeded"]
    assert last.output == last.input.replace("question", "answer")
    assert world.steps(last.id)[0].context == []
    assert cleaner.run_once().total == 0  # nothing left to do


def last_run(world: World) -> uuid.UUID:
    with world.engine.connect() as conn:
        found = conn.execute(text("SELECT id FROM runs ORDER BY created_at DESC, id LIMIT 1"))
        return uuid.UUID(str(found.scalar_one()))


def test_a_run_executed_for_real_keeps_its_answer_and_loses_its_deltas(world: World) -> None:
    run = world.message("hello")
    world.executor(ScriptedModel([text_reply("hello there, how are you today?")])).execute(run.id)
    assert world.run(run.id).status == "succeeded"
    assert deltas(world.engine) > 0

    cleaned = Cleaner(world.engine, EVERYTHING).run_once()

    assert cleaned.delta_events > 0
    assert cleaned.step_contexts == 1
    events = world.events(run.id)
    assert "message.delta" not in {e.type for e in events}
    answer = next(e for e in events if e.type == "message")
    assert answer.data["content"] == "hello there, how are you today?"
    assert events[-1].type == "run.succeeded"


def test_the_cleaner_never_touches_a_queued_or_running_run(world: World) -> None:
    with transaction(world.engine) as session:
        running = start(session, world, "still working")
        run_id = running.id
        key = idempotency_key(run_store.run_record(running), 1, "call_1")
        for n in range(5):  # versions 1..5, the first written by the running run's tool call
            blocks.set_block(
                session,
                world.tenant_id,
                world.agent_id,
                "notes",
                f"v{n}",
                default_limit=5000,
                edit_key=key if n == 0 else None,
            )
        session.execute(text("UPDATE run_steps SET created_at = now() - interval '30 days'"))
    queued = world.message("waiting its turn", queue=True)
    keep_one = Retention(
        batch_rows=10, broker_consumed_s=0, delta_events_s=0, step_context_s=0, block_versions=1
    )

    cleaned = Cleaner(world.engine, keep_one).run_once()

    assert (cleaned.delta_events, cleaned.step_contexts) == (0, 0)
    assert cleaned.block_versions == 3  # 2..4; 1 is the running call's, 5 the newest
    assert deltas(world.engine) == DELTAS_PER_RUN
    assert world.steps(run_id)[0].context == PROMPT
    assert [e.type for e in world.events(queued.id)] == ["run.queued"]
    with transaction(world.engine) as session:
        history = blocks.block_history(session, world.tenant_id, world.agent_id, "notes")
    assert [v.version for v in history] == [1, 5]

    with transaction(world.engine) as session:
        row = run_store.owned(session, run_id, OWNER)
        run_store.finish(session, row, "succeeded", stop_reason="answer", output="done")

    cleaned = Cleaner(world.engine, keep_one).run_once()

    assert (cleaned.delta_events, cleaned.step_contexts, cleaned.block_versions) == (5, 1, 1)
    assert world.steps(run_id)[0].context == []
    assert world.run(queued.id).status == "queued"  # next in line, untouched
    assert [e.type for e in world.events(queued.id)] == ["run.queued"]


def test_the_default_retention_keeps_what_is_recent(world: World) -> None:
    finished_runs(world, 3)
    default = Retention.of(world.settings)
    assert default == Retention()  # the settings' defaults are the documented ones
    forever = world.settings.model_copy(
        update={"retention_step_context_days": None, "retention_block_versions": None}
    )
    assert Retention.of(forever).step_context_s is None
    from_env = Settings.model_validate({"retention_block_versions": "forever"})
    assert from_env.retention_block_versions is None

    assert Cleaner(world.engine, default).run_once().total == 0

    with world.engine.begin() as conn:  # an hour and eight days later
        conn.execute(text("UPDATE runs SET finished_at = finished_at - interval '1 hour'"))
        conn.execute(text("UPDATE run_steps SET created_at = created_at - interval '8 days'"))
    cleaned = Cleaner(world.engine, default).run_once()
    assert (cleaned.delta_events, cleaned.step_contexts) == (3 * DELTAS_PER_RUN, 3)


def test_a_pass_is_skipped_while_another_worker_holds_it(world: World) -> None:
    finished_runs(world, 2)
    with world.engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK_ID})
        assert Cleaner(world.engine, EVERYTHING).run_once() == Cleaned(skipped=True)
        other.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
        other.commit()
    assert Cleaner(world.engine, EVERYTHING).run_once().delta_events == 2 * DELTAS_PER_RUN


def test_cleaners_in_several_workers_at_once_do_not_fail(world: World) -> None:
    errors: list[BaseException] = []
    totals: list[Cleaned] = []
    lock = threading.Lock()

    def worker(barrier: threading.Barrier) -> None:
        cleaner = Cleaner(world.engine, EVERYTHING)
        try:
            for _ in range(5):
                barrier.wait()
                cleaned = cleaner.run_once()
                with lock:
                    totals.append(cleaned)
        except BaseException as exc:
            errors.append(exc)

    for _ in range(3):
        finished_runs(world, 40)
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=worker, args=(barrier,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert sum(c.delta_events for c in totals) == 3 * 40 * DELTAS_PER_RUN  # each row once
    assert sum(c.step_contexts for c in totals) == 3 * 40
    assert deltas(world.engine) == 0
    assert versions(world.engine) == 10
