"""Firing schedules on the real database: each due fire time becomes exactly one run, however
many schedulers race for it; missed fires follow the schedule's policy; a fixed session gets
every fire; a schedule that fires sends `schedule.fired` to the endpoints that want it."""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any

from sqlalchemy import text

from agents.schedules import store
from agents.schedules.firing import fire_due
from agents.schedules.records import NewSchedule, Schedule
from agents.webhooks import store as hook_store
from agents.webhooks.records import NewWebhook
from core.db import transaction
from core.secrets import SecretBox
from tests.agents.conftest import World


def schedule(world: World, **fields: Any) -> Schedule:
    fields.setdefault("interval_s", 10)
    new = NewSchedule(agent_id=world.agent_id, input="Daily digest, please.", **fields)
    with transaction(world.engine) as session:
        return store.create_schedule(session, world.tenant_id, new)


def backdate(world: World, schedule_id: uuid.UUID, seconds: float) -> None:
    """Move the schedule (its anchor and next fire) `seconds` into the past."""
    with world.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE schedules SET anchor_at = anchor_at - make_interval(secs => :s), "
                "next_fire_at = next_fire_at - make_interval(secs => :s) WHERE id = :id"
            ),
            {"s": seconds, "id": schedule_id},
        )


def fires(world: World, schedule_id: uuid.UUID) -> list[Any]:
    with transaction(world.engine) as session:
        return list(
            reversed(
                store.list_fires(session, world.tenant_id, schedule_id, limit=100, before=None)
            )
        )


def test_each_due_fire_time_becomes_one_run_with_its_stamp(world: World) -> None:
    made = schedule(world, interval_s=10, user_id="ann", metadata={"kind": "digest"})
    assert made.next_fire_at is not None
    backdate(world, made.id, 35)  # three fire times are due (25, 15 and 5 s ago)

    assert fire_due(world.engine, world.sent.runs.append, grace_s=60) == 3
    assert fire_due(world.engine, world.sent.runs.append, grace_s=60) == 0  # nothing twice

    done = fires(world, made.id)
    assert len(done) == 3
    assert [f.late for f in done] == [False] * 3
    gaps = {(b.fire_at - a.fire_at).total_seconds() for a, b in itertools.pairwise(done)}
    assert gaps == {10.0}
    runs = [f.run for f in done]
    assert world.sent.runs == [run.id for run in runs]  # each sent once, after the commit
    assert len({run.session_id for run in runs}) == 3  # a new session per fire
    for fire, run in zip(done, runs, strict=True):
        assert run.input == "Daily digest, please."
        assert run.metadata == {
            "kind": "digest",
            "schedule_id": str(made.id),
            "fire_at": fire.fire_at.isoformat(),
        }
    with transaction(world.engine) as session:
        after = store.get_schedule(session, world.tenant_id, made.id)
        users = session.execute(
            text("SELECT DISTINCT user_id FROM sessions WHERE id = ANY(:ids)"),
            {"ids": [run.session_id for run in runs]},
        ).scalars()
        assert list(users) == ["ann"]
    assert after.fires == 3
    assert after.last_fire_at == done[-1].fire_at
    assert after.next_fire_at is not None
    assert after.next_fire_at > done[-1].fire_at


def test_racing_schedulers_make_one_run_per_fire_time(world: World) -> None:
    made = [schedule(world, interval_s=5) for _ in range(4)]
    for item in made:
        backdate(world, item.id, 22)  # four fire times each (17, 12, 7 and 2 s ago)
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def scheduler() -> None:
        barrier.wait()
        counts.append(fire_due(world.engine, lambda _run: None, grace_s=60))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(counts) == 16
    with world.engine.begin() as conn:
        runs = conn.execute(
            text("SELECT metadata->>'schedule_id', metadata->>'fire_at' FROM runs")
        ).all()
    assert len(runs) == 16
    assert len(set(runs)) == 16


def test_missed_fires_run_once_late_or_are_skipped(world: World) -> None:
    once = schedule(world, interval_s=60, missed="run_once")
    skip = schedule(world, interval_s=60, missed="skip")
    for item in (once, skip):
        backdate(world, item.id, 3600)  # an hour down: 60 fires, all later than the grace

    # Due: 59 fire times a minute apart up to now; with a 90 s grace the last two are on time.
    assert fire_due(world.engine, world.sent.runs.append, grace_s=90) == 5
    assert [f.late for f in fires(world, once.id)] == [True, False, False]  # one for the missed
    assert [f.late for f in fires(world, skip.id)] == [False, False]
    with transaction(world.engine) as session:
        for item in (once, skip):
            now = store.get_schedule(session, world.tenant_id, item.id)
            assert now.next_fire_at is not None


def test_a_fixed_session_gets_every_fire_one_after_another(world: World) -> None:
    made = schedule(world, interval_s=10, session_mode="fixed", user_id="user-1")
    backdate(world, made.id, 25)  # fires 15 and 5 s ago
    assert fire_due(world.engine, world.sent.runs.append, grace_s=60) == 2
    first, second = (f.run for f in fires(world, made.id))
    assert first.session_id == second.session_id
    assert world.sent.runs == [first.id]  # the second waits behind the first in its session
    with transaction(world.engine) as session:
        assert store.get_schedule(session, world.tenant_id, made.id).session_id == first.session_id


def test_a_paused_schedule_does_not_fire_and_resumes_from_now(world: World) -> None:
    made = schedule(world, interval_s=10)
    backdate(world, made.id, 30)
    with transaction(world.engine) as session:
        paused = store.update_schedule(session, world.tenant_id, made.id, {"enabled": False})
    assert paused.next_fire_at is None
    assert fire_due(world.engine, world.sent.runs.append, grace_s=60) == 0
    with transaction(world.engine) as session:
        resumed = store.update_schedule(session, world.tenant_id, made.id, {"enabled": True})
        now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    assert resumed.next_fire_at is not None
    assert resumed.next_fire_at > now
    assert fire_due(world.engine, world.sent.runs.append, grace_s=60) == 0  # nothing made up


def test_a_fire_is_sent_to_the_endpoints_that_want_schedule_fired(world: World) -> None:
    box = SecretBox.from_settings(world.settings)
    with transaction(world.engine) as session:
        hook_store.create_webhook(
            session,
            box,
            world.tenant_id,
            NewWebhook(url="https://example.com/hook", events=("schedule.fired",)),
        )
    made = schedule(world, interval_s=10)
    backdate(world, made.id, 10)
    assert fire_due(world.engine, world.sent.runs.append, grace_s=60) == 1
    (fire,) = fires(world, made.id)
    with world.engine.begin() as conn:
        (event_id, payload), *rest = conn.execute(
            text("SELECT event_id, payload FROM webhook_deliveries")
        ).all()
    assert rest == []
    assert event_id == f"evt_sched_{made.id.hex}_{int(fire.fire_at.timestamp())}"
    assert payload["type"] == "schedule.fired"
    assert payload["data"]["run_id"] == str(fire.run.id)
    assert payload["data"]["schedule_id"] == str(made.id)
