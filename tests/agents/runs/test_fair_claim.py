"""Fair claiming on the real embedded Postgres: a ticket takes the claimable run of the tenant
with the fewest running, then least recently started, runs; ties keep the ticket's own run."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from agents.records import Run
from agents.runs import fair_claim
from agents.runs import store as run_store
from core.config import Settings
from core.db import transaction
from inference.client.scripted import ScriptedModel, text_reply
from tests.agents.conftest import World, WorldFactory


def flood(world: World, n: int) -> list[Run]:
    """`n` queued runs, each in a session of its own (none blocked)."""
    return [world.message(f"job {i}", chat=world.new_session()) for i in range(n)]


def hold(world: World, run: Run, owner: str = "busy-slot", lease_s: float = 60.0) -> None:
    """Claim `run` for another worker, as a slot busy with it."""
    with transaction(world.engine) as session:
        assert run_store.claim(session, run.id, owner, lease_s) is not None


def statuses(world: World, runs: list[Run]) -> list[str]:
    """The runs' statuses now (of any tenant)."""
    with transaction(world.engine) as session:
        return [run_store.get_run(session, r.tenant_id, r.id).status for r in runs]


def started_order(engine: Engine) -> list[uuid.UUID]:
    """Tenants of the started runs, in the order they started."""
    with transaction(engine) as session:
        rows = session.execute(
            text("SELECT tenant_id FROM runs WHERE started_at IS NOT NULL ORDER BY started_at")
        ).all()
    return [row[0] for row in rows]


def test_a_flooding_tenant_does_not_delay_another_tenants_run(
    new_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = new_world(), new_world()
    runs = flood(a, 12)
    interactive = b.message("urgent")  # its ticket is behind all twelve of A's
    hold(a, runs[0])  # one slot is busy with A's first run

    caplog.set_level("INFO", logger="agents.runs.journal")
    a.executor(ScriptedModel([text_reply("done")])).execute(runs[1].id)  # A's next ticket

    done = b.run(interactive.id)
    assert (done.status, done.output) == ("succeeded", "done")
    assert statuses(a, runs[1:]) == ["queued"] * 11
    assert f"ticket for run {runs[1].id} ran run {interactive.id}" in caplog.text


def test_tickets_in_fifo_order_alternate_tenants(new_world: WorldFactory) -> None:
    a, b = new_world(), new_world()
    queued = flood(a, 4) + flood(b, 4)  # the queue: A's four tickets, then B's
    executor = a.executor(ScriptedModel([text_reply("ok")] * 8))
    for ticket in queued:
        executor.execute(ticket.id)

    assert statuses(a, queued) == ["succeeded"] * 8
    assert started_order(a.engine) == [a.tenant_id, b.tenant_id] * 4


def test_with_fair_share_off_a_ticket_runs_its_own_run(
    new_world: WorldFactory, tmp_path: Path, database_url: str
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url, worker_fair_share=False)
    a, b = new_world(settings), new_world(settings)
    runs = flood(a, 3)
    interactive = b.message("urgent")
    hold(a, runs[0])
    a.executor(ScriptedModel([text_reply("done")])).execute(runs[1].id)
    assert statuses(a, runs) == ["running", "succeeded", "queued"]
    assert b.run(interactive.id).status == "queued"


def test_ties_keep_the_tickets_own_run(new_world: WorldFactory) -> None:
    a, b = new_world(), new_world()
    older, mine = flood(a, 2)
    executor = a.executor(ScriptedModel([text_reply("one"), text_reply("two")]))
    executor.execute(mine.id)  # same tenant: the ticket's run, not the older one
    assert statuses(a, [older, mine]) == ["queued", "succeeded"]

    other = new_world()
    theirs = other.message("never served either")  # B and it: both never started, none running
    late = b.message("b's run")
    executor.execute(late.id)
    assert b.run(late.id).status == "succeeded"
    assert other.run(theirs.id).status == "queued"


def test_a_run_behind_its_sessions_active_run_is_never_taken(world: World) -> None:
    first = world.message("one")
    second = world.message("two", queue=True)
    hold(world, first)
    model = ScriptedModel([])
    world.executor(model).execute(second.id)  # its own ticket, delivered early
    world.executor(model).execute(uuid.uuid4())  # any ticket
    assert statuses(world, [first, second]) == ["running", "queued"]
    assert model.requests == []


def test_a_run_with_a_lapsed_lease_is_taken(world: World) -> None:
    run = world.message("resume me")
    hold(world, run, owner="dead-worker", lease_s=0.05)
    time.sleep(0.1)
    world.executor(ScriptedModel([text_reply("resumed")])).execute(uuid.uuid4())
    done = world.run(run.id)
    assert (done.status, done.attempts) == ("succeeded", 2)


def test_a_ticket_with_nothing_claimable_does_nothing(world: World) -> None:
    run = world.message("one")
    executor = world.executor(ScriptedModel([text_reply("1")]))
    executor.execute(run.id)
    before = world.events(run.id)
    executor.execute(run.id)  # a duplicate ticket
    executor.execute(uuid.uuid4())  # a ticket for a run that is gone
    assert world.events(run.id) == before
    assert world.run(run.id).attempts == 1


def test_concurrent_claimers_never_take_the_same_run(new_world: WorldFactory) -> None:
    worlds = [new_world() for _ in range(3)]
    runs = [r for w in worlds for r in flood(w, 8)]  # 24 claimable runs
    engine = worlds[0].engine
    claimers, tickets_each = 8, 4  # 32 tickets
    start = threading.Barrier(claimers)
    taken: list[uuid.UUID] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        start.wait()
        for i in range(tickets_each):
            ticket = runs[(n * tickets_each + i) % len(runs)].id
            with transaction(engine) as session:
                run = fair_claim.claim(session, ticket, f"worker-{n}", 60.0)
            if run is not None:
                with lock:
                    taken.append(run.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(taken) == len(set(taken)) == len(runs)  # every run once, none twice
    with transaction(engine) as session:
        attempts = session.execute(text("SELECT attempts FROM runs")).scalars().all()
    assert sorted(attempts) == [1] * len(runs)


def test_the_selection_uses_the_indexes_with_thousands_queued(world: World) -> None:
    with transaction(world.engine) as session:
        session.execute(
            text(
                "INSERT INTO runs (id, tenant_id, session_id, agent_id, status, input,"
                " created_at) SELECT gen_random_uuid(), :tenant, :session, :agent, 'queued',"
                " 'x', clock_timestamp() FROM generate_series(1, 3000)"
            ),
            {"tenant": world.tenant_id, "session": world.chat.id, "agent": world.agent_id},
        )
        session.execute(text("ANALYZE runs"))
    with transaction(world.engine) as session:
        plan = "\n".join(
            session.execute(
                text("EXPLAIN " + str(fair_claim._RANKED)),
                {"ticket": uuid.uuid4(), "heads": fair_claim.HEADS_PER_TENANT},
            ).scalars()
        )
    assert "ix_runs_tenant_active" in plan
    assert "Seq Scan on runs" not in plan
