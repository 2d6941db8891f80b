"""Schedules fired by real Celery workers: a schedule every 2 s for a minute across two
workers makes exactly one run per fire time, and a restart of every worker in the middle
loses none (the fires that fell while they were down are made late, once) and doubles none."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from agents.schedules import store
from agents.schedules.records import NewSchedule
from core.db import transaction
from tests.agents.worker.test_main import make_agent, worker_env
from tests.services import WorkerFactory

pytestmark = pytest.mark.timeout(420)
INTERVAL_S = 2


def test_two_workers_and_a_restart_make_one_run_per_fire(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
) -> None:
    env = worker_env(database_url, redis_url, inference_url, AGENTMILL_SCHEDULE_POLL_S="0.3")
    first, second = start_worker(env, concurrency=2), start_worker(env, concurrency=2)
    tenant_id, agent_id = make_agent(engine, [], max_steps=1)
    with transaction(engine) as session:
        made = store.create_schedule(
            session,
            tenant_id,
            NewSchedule(agent_id=agent_id, input="Say hi.", interval_s=INTERVAL_S),
        )

    time.sleep(25)
    first.kill()  # SIGKILL, mid-pass or not
    second.kill()
    time.sleep(8)  # four fire times fall while nothing runs
    start_worker(env, concurrency=2)
    start_worker(env, concurrency=2)
    time.sleep(25)
    with transaction(engine) as session:
        store.update_schedule(session, tenant_id, made.id, {"enabled": False})
    time.sleep(1)

    with engine.begin() as conn:
        fired = conn.execute(
            text(
                "SELECT f.fire_at, f.run_id, f.created_at FROM schedule_fires f "
                "WHERE f.schedule_id = :id ORDER BY f.fire_at"
            ),
            {"id": made.id},
        ).all()
        runs = conn.execute(
            text("SELECT metadata->>'fire_at' FROM runs WHERE metadata->>'schedule_id' = :id"),
            {"id": str(made.id)},
        ).scalars()
        run_times = sorted(runs)
    times = [row.fire_at for row in fired]
    assert len(times) >= 20
    assert times[0] == made.next_fire_at  # the first fire time, and none since skipped:
    assert all(b - a == timedelta(seconds=INTERVAL_S) for a, b in itertools.pairwise(times))
    assert all(row.run_id is not None for row in fired)
    assert len(run_times) == len(times) == len(set(run_times))  # one run each, none twice
    assert run_times == sorted(t.isoformat() for t in times)
    late = [row for row in fired if row.created_at - row.fire_at > timedelta(seconds=3)]
    assert len(late) >= 3  # the restart's fires, made once the workers were back
