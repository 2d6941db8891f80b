"""MCP tools through real Celery workers on the bundled model: a worker killed while an MCP
call is in flight (the call is not sent again: its outcome is unknown), and approval of a
server's calls by prefix (`notes__*`). The MCP server is tests/agents/mcp_test_server.py over
stdio, started by the workers from their allow-list."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agents import agent_store
from agents.mcp import store as mcp_store
from agents.mcp.records import NewMcpServer
from agents.records import ApprovalPolicy, CallDecision, McpServerUse, MemoryPolicy, NewAgent
from agents.runs import approvals
from agents.runs import store as run_store
from agents.runs.events import read_events
from agents.tools.runner import OUTCOME_UNKNOWN
from agents.worker.queue import RunQueue, make_celery
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox
from core.tenants import ensure_tenant
from tests.agents.worker.test_main import (
    deny_until_finished,
    new_session,
    send,
    wait_finished,
    wait_status,
    worker_env,
)
from tests.services import MCP_TEST_SERVER, ROOT, Worker, WorkerFactory

pytestmark = pytest.mark.timeout(400)


def mcp_env(base: dict[str, str], log: Path, gate: Path) -> dict[str, str]:
    notes = {
        "command": sys.executable,
        "args": [*MCP_TEST_SERVER, "stdio"],
        "cwd": str(ROOT),
        "env": {"MCP_TEST_LOG": str(log), "MCP_TEST_GATE": str(gate)},
    }
    return {**base, "AGENTMILL_MCP_STDIO_SERVERS": json.dumps({"notes": notes})}


def mcp_agent(
    engine: Engine, home: Path, approval: ApprovalPolicy | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "e2e")
        box = SecretBox.from_settings(Settings(home=home))
        new = NewMcpServer(name="notes", transport="stdio", command="notes")
        mcp_store.create_server(session, box, tenant_id, new)
        agent = agent_store.create_agent(
            session,
            tenant_id,
            NewAgent(
                name=f"agent-{uuid.uuid4().hex[:6]}",
                instructions="You are a helpful assistant. Use the tools when asked.",
                model="local",
                mcp_servers=(McpServerUse("notes", ("record",)),),
                approval=approval or ApprovalPolicy(),
                max_steps=2,
                tool_choice="required",
                memory=MemoryPolicy(extract_facts=False),
                temperature=0.0,
            ),
        )
    return tenant_id, agent.id


def starts(log: Path) -> Counter[str]:
    """Executions begun, by idempotency key."""
    text = log.read_text() if log.exists() else ""
    return Counter(line.split()[1] for line in text.splitlines() if line.startswith("start "))


def test_a_worker_killed_during_an_mcp_call_never_sends_it_twice(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    log, gate = tmp_path / "calls.log", tmp_path / "gate"
    env = mcp_env(worker_env(database_url, redis_url, inference_url), log, gate)
    doomed: Worker = start_worker(env)
    queue = RunQueue(make_celery(Settings(broker_url=redis_url), database_url))
    tenant_id, agent_id = mcp_agent(engine, tmp_path / "home")
    chat = new_session(engine, tenant_id, agent_id, "bob")
    run = send(engine, queue, tenant_id, chat, "Record the note 'hello'.")

    deadline = time.monotonic() + 120
    while not starts(log):
        assert time.monotonic() < deadline, doomed.output()
        time.sleep(0.1)
    (first_key,) = starts(log)
    doomed.kill()  # SIGKILL while the MCP server holds the call (it waits for the gate)
    gate.touch()  # later calls go through at once
    start_worker(env)
    done = wait_finished(engine, tenant_id, run.id, 180)

    assert done.attempts >= 2
    assert all(count == 1 for count in starts(log).values()), log.read_text()
    with transaction(engine) as session:
        steps = run_store.load_steps(session, run.id)
        events = read_events(session, tenant_id, run.id)
    calls = {c.call_id: c for s in steps for c in s.tool_calls}
    _, step, call_id = first_key.rsplit(":", 2)
    killed = calls[call_id]
    assert killed.name == "notes__record"
    assert killed.result == OUTCOME_UNKNOWN  # not read-only: not sent again
    assert int(step) == next(s.step for s in steps if call_id in {c.call_id for c in s.tool_calls})
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_a_servers_calls_wait_for_approval_by_prefix(
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    log, gate = tmp_path / "calls.log", tmp_path / "gate"
    gate.touch()
    start_worker(mcp_env(worker_env(database_url, redis_url, inference_url), log, gate))
    queue = RunQueue(make_celery(Settings(broker_url=redis_url), database_url))
    policy = ApprovalPolicy(tools=("notes__*",), timeout_s=600)
    tenant_id, agent_id = mcp_agent(engine, tmp_path / "home", policy)
    chat = new_session(engine, tenant_id, agent_id, "bob")
    run = send(engine, queue, tenant_id, chat, "Record the note 'hello'.")

    waiting = wait_status(engine, tenant_id, run.id, "requires_action", 120)
    assert waiting.required_action is not None, waiting
    (first, *others) = waiting.required_action.calls
    assert first.name == "notes__record"
    assert first.parameters is not None
    assert first.parameters["properties"]["note"]["type"] == "string"
    assert not starts(log)  # nothing was sent before the approval
    decisions = [CallDecision(first.call_id, "approve")]
    decisions += [CallDecision(c.call_id, "deny") for c in others]
    with transaction(engine) as session:
        assert approvals.decide(session, tenant_id, run.id, decisions)
    queue.enqueue_run(run.id)
    deny_until_finished(engine, queue, tenant_id, run.id)
    assert sum(starts(log).values()) == 1, log.read_text()
    with transaction(engine) as session:
        steps = run_store.load_steps(session, run.id)
    (approved,) = [c for s in steps for c in s.tool_calls if c.call_id == first.call_id][:1]
    assert approved.result is not None
    assert approved.result.startswith("noted: ")
