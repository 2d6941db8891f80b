"""Real Celery workers (Redis broker) executing runs on the bundled model through the real
inference server: a worker killed mid-run. (tests/api/test_e2e.py drives a worker over REST.)"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from agents import agent_store
from agents.records import AgentChanges, ApprovalPolicy, CallDecision, MemoryPolicy, NewAgent, Run
from agents.runs import approvals
from agents.runs import store as run_store
from agents.runs.events import read_events
from agents.tools.runner import OUTCOME_UNKNOWN
from agents.worker.queue import RunQueue, make_celery
from core.config import Settings
from core.db import transaction
from core.tenants import ensure_tenant
from memory.scope_indexes import Scope, existing_indexes
from tests.services import Worker, WorkerFactory

pytestmark = pytest.mark.timeout(400)


def worker_env(
    database_url: str, redis_url: str, inference_url: str, **extra: str
) -> dict[str, str]:
    return {
        "AGENTMILL_DATABASE_URL": database_url,
        "AGENTMILL_BROKER_URL": redis_url,
        "AGENTMILL_INFERENCE_URL": inference_url,
        "AGENTMILL_TOOL_MODULES": '["tests.agents.e2e_tools"]',
        "AGENTMILL_RUN_LEASE_S": "3",
        "AGENTMILL_SWEEP_INTERVAL_S": "1",
        **extra,
    }


def make_agent(
    engine: Engine, tools: list[str], *, max_steps: int = 3
) -> tuple[uuid.UUID, uuid.UUID]:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "e2e")
        agent = agent_store.create_agent(
            session,
            tenant_id,
            NewAgent(
                name=f"agent-{uuid.uuid4().hex[:6]}",
                instructions="You are a helpful assistant. Use the tools when asked.",
                model="local",
                tools=tuple(tools),
                max_steps=max_steps,
                tool_choice="required",
                memory=MemoryPolicy(extract_facts=False),
                temperature=0.0,
            ),
        )
    return tenant_id, agent.id


def send(
    engine: Engine, queue: RunQueue, tenant_id: uuid.UUID, chat_id: uuid.UUID, text: str
) -> Run:
    with transaction(engine) as session:
        new = run_store.create_run(session, tenant_id, chat_id, text)
    queue.enqueue_run(new.run.id)
    return new.run


def wait_finished(engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID, timeout_s: float) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction(engine) as session:
            run = run_store.get_run(session, tenant_id, run_id)
        if run.finished:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not finished after {timeout_s} s: {run.status}")


def new_session(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID, user: str) -> uuid.UUID:
    with transaction(engine) as session:
        return agent_store.create_session(
            session, tenant_id, agent_id, user_id=user, metadata={}
        ).id


def test_a_killed_worker_is_replaced_and_no_tool_call_runs_twice(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    record = tmp_path / "record.txt"
    record.touch()
    env = worker_env(database_url, redis_url, inference_url, AGENTMILL_TEST_RECORD=str(record))
    doomed: Worker = start_worker(env)
    queue = RunQueue(make_celery(Settings(broker_url=redis_url), database_url))
    tenant_id, agent_id = make_agent(engine, ["slow_record"], max_steps=2)
    chat = new_session(engine, tenant_id, agent_id, "bob")
    run = send(engine, queue, tenant_id, chat, "Record the note 'hello'.")

    deadline = time.monotonic() + 120
    while "start" not in record.read_text():
        assert time.monotonic() < deadline, doomed.output()
        time.sleep(0.1)
    doomed.kill()  # SIGKILL in the middle of the slow tool call
    start_worker(env)
    done = wait_finished(engine, tenant_id, run.id, 180)

    assert done.finished
    assert done.attempts >= 2
    lines = [line.split() for line in record.read_text().splitlines()]
    started = Counter(call for kind, call, _ in lines if kind == "start")
    finished = Counter(call for kind, call, _ in lines if kind == "done")
    assert all(count == 1 for count in started.values()), lines  # never started twice
    with transaction(engine) as session:
        steps = run_store.load_steps(session, run.id)
        events = read_events(session, tenant_id, run.id)
    calls = {c.call_id: c for s in steps for c in s.tool_calls}
    assert set(started) <= set(calls)
    for call_id in started:  # slow_record is not idempotent: the killed call is not re-run
        expected = "recorded" if call_id in finished else OUTCOME_UNKNOWN
        assert calls[call_id].result == expected, (call_id, lines)
    assert any(call_id not in finished for call_id in started), lines  # one was cut short
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # nothing lost
    per_call = Counter(
        (e.type, e.data["call_id"]) for e in events if e.type in ("tool.call", "tool.result")
    )
    assert all(count == 1 for count in per_call.values()), per_call  # nothing duplicated
    assert [e.data["attempt"] for e in events if e.type == "run.started"][-1] >= 2


def wait_status(
    engine: Engine, tenant_id: uuid.UUID, run_id: uuid.UUID, status: str, timeout_s: float
) -> Run:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction(engine) as session:
            run = run_store.get_run(session, tenant_id, run_id)
        if run.status == status or run.finished:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not {status} after {timeout_s} s: {run.status}")


def test_a_run_waiting_for_approval_outlives_its_worker_and_resumes_on_another(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    record = tmp_path / "record.txt"
    record.touch()
    env = worker_env(database_url, redis_url, inference_url, AGENTMILL_TEST_RECORD=str(record))
    doomed: Worker = start_worker(env)
    queue = RunQueue(make_celery(Settings(broker_url=redis_url), database_url))
    tenant_id, agent_id = make_agent(engine, ["slow_record"], max_steps=2)
    with transaction(engine) as session:
        policy = ApprovalPolicy(tools=("slow_record",), timeout_s=600)
        agent_store.update_agent(session, tenant_id, agent_id, AgentChanges(approval=policy))
    chat = new_session(engine, tenant_id, agent_id, "bob")
    run = send(engine, queue, tenant_id, chat, "Record the note 'hello'.")

    waiting = wait_status(engine, tenant_id, run.id, "requires_action", 120)
    assert waiting.status == "requires_action", doomed.output()
    assert waiting.required_action is not None
    assert record.read_text() == ""  # nothing ran before the approval
    doomed.kill()  # the worker dies while the run waits: it held nothing
    pending = [CallDecision(c.call_id, "approve") for c in waiting.required_action.calls]
    with transaction(engine) as session:
        assert approvals.decide(session, tenant_id, run.id, pending)
    queue.enqueue_run(run.id)
    start_worker(env)
    deny_until_finished(engine, queue, tenant_id, run.id)

    lines = [line.split() for line in record.read_text().splitlines()]
    started = Counter(call for kind, call, _ in lines if kind == "start")
    approved = {d.call_id for d in pending}
    assert approved <= set(started), lines  # every approved call ran, each once
    assert all(started[call_id] == 1 for call_id in approved), lines
    with transaction(engine) as session:
        events = read_events(session, tenant_id, run.id)
    kinds = [e.type for e in events]
    assert (
        kinds.index("run.requires_action")
        < kinds.index("tool.approval")
        < kinds.index("tool.result")
    )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def deny_until_finished(
    engine: Engine, queue: RunQueue, tenant_id: uuid.UUID, run_id: uuid.UUID
) -> Run:
    """Wait for the run to end, denying each later call it waits on (the small model may
    call the tool again); returns the ended run."""
    done = wait_status(engine, tenant_id, run_id, "requires_action", 180)
    while not done.finished:
        assert done.required_action is not None
        later = [CallDecision(c.call_id, "deny") for c in done.required_action.calls]
        with transaction(engine) as session:
            approvals.decide(session, tenant_id, run_id, later)
        queue.enqueue_run(run_id)
        done = wait_status(engine, tenant_id, run_id, "requires_action", 180)
    return done


def test_a_worker_gives_large_scopes_their_own_vector_indexes(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
) -> None:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "scopes")
    agent_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO memories (id, tenant_id, agent_id, user_id, kind, content, "
                "embedding, context_embedding) "
                "SELECT gen_random_uuid(), :t, :a, 'ann', 'fact', 'note ' || g, v, v FROM "
                "generate_series(1, 60) AS g, LATERAL (SELECT CAST(array_agg(random() - 0.5) "
                "AS halfvec(384)) AS v FROM generate_series(1, 384 + 0 * g)) AS r"
            ),
            {"t": tenant_id, "a": agent_id},
        )
        conn.execute(text("ANALYZE memories"))
    env = worker_env(
        database_url,
        redis_url,
        inference_url,
        AGENTMILL_MEMORY_SCOPE_INDEX_MIN_ROWS="50",
        AGENTMILL_MEMORY_SCOPE_INDEX_INTERVAL_S="1",
    )
    worker = start_worker(env)
    wanted = {
        *Scope(tenant_id, agent_id).index_names().values(),
        *Scope(tenant_id, agent_id, "ann").index_names().values(),
    }
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            built = {i.name for i in existing_indexes(conn) if i.valid}
        if built == wanted:
            break
        assert time.monotonic() < deadline, (built, worker.output())
        time.sleep(0.5)
