"""The sweeper re-queues runs whose worker died and runs whose queue message was lost, once
per interval (counting them in `agentmill_sweeper_requeued_total{reason="lost"}`), and leaves
healthy and finished runs alone."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY
from sqlalchemy import text

from agents.runs import store as run_store
from agents.worker.sweeper import sweep_once
from core.db import transaction
from inference.client.scripted import ScriptedModel, text_reply
from tests.agents.conftest import World
from tests.api.support import RecordingQueue


def _requeued(reason: str) -> float:
    # agents.metrics defines it: imported by the sweeper, so registered by now.
    value = REGISTRY.get_sample_value("agentmill_sweeper_requeued_total", {"reason": reason})
    return value or 0.0


def test_a_run_with_a_lapsed_lease_is_sent_again_once_per_interval(world: World) -> None:
    run = world.message("hello")
    with transaction(world.engine) as session:
        run_store.claim(session, run.id, "dead-worker", lease_s=0.05)
        session.execute(text("UPDATE runs SET enqueued_at = now() - interval '1 hour'"))
    time.sleep(0.1)
    queue = RecordingQueue()
    counted = _requeued("lost")
    assert sweep_once(world.engine, queue, interval_s=30) == 1
    assert queue.runs == [run.id]
    assert sweep_once(world.engine, queue, interval_s=30) == 0  # just sent: not again yet
    assert _requeued("lost") == counted + 1

    world.executor(ScriptedModel([text_reply("hi")]), owner="new").execute(run.id)
    assert world.run(run.id).status == "succeeded"


def test_a_long_queued_run_is_sent_again_but_not_one_waiting_its_turn(world: World) -> None:
    first = world.message("one")
    second = world.message("two", queue=True)
    healthy = world.new_session()
    recent = world.message("fresh", chat=healthy)
    with transaction(world.engine) as session:
        session.execute(
            text("UPDATE runs SET enqueued_at = now() - interval '1 hour' WHERE id <> :id"),
            {"id": recent.id},
        )
    queue = RecordingQueue()
    assert sweep_once(world.engine, queue, interval_s=1) == 1
    assert queue.runs == [first.id]  # `second` waits behind `first`; `recent` is fresh
    assert second.id not in queue.runs
