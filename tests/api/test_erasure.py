"""Erasing an end user over REST: after a user has sessions, messages, runs with (memory) tool
calls, steps, events, batch items, memories and blocks, the erase removes every row holding
their text (a scan of every text and JSON column of every table finds none of it), reports
the counts, leaves another user's data whole, and work queued before it stores nothing."""

# ruff: noqa: S608 - the queries are built from the catalog's names and fixed text, no input

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from agents import agent_store
from agents.runs.executor import RunExecutor, Services
from agents.runs.facts import extract_facts
from agents.runs.portal import Portal
from agents.tools.builtin import BUILTIN_TOOLS
from agents.tools.memory import MEMORY_TOOLS
from agents.tools.registry import ToolRegistry
from api.app import create_app
from core.config import Settings
from core.db import transaction
from inference.client.scripted import ScriptedModel, text_reply, tool_calls_reply
from memory.embedder import HashingEmbedder
from memory.erasure import ErasedSource
from memory.records import NewMemory
from memory.store import MemoryStore
from tests.api import support
from tests.api.support import Headers, RecordingQueue

A_MARK = "qxa7"
"""In every piece of text of the erased user (their user id too)."""
B_MARK = "kyb3"
"""In every piece of text of the other user, who must keep it all."""
USER_A = f"ann-{A_MARK}"
USER_B = f"bob-{B_MARK}"

SCANNED_TYPES = ("text", "character varying", "character", "jsonb", "json")


@pytest.fixture
def portal() -> Iterator[Portal]:
    p = Portal()
    yield p
    p.close()


@pytest.fixture
def store(settings: Settings, engine: Engine) -> MemoryStore:
    """One store for the app and the executor (the app closes it)."""
    return MemoryStore(engine, HashingEmbedder(), settings)


@pytest.fixture
def client(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, store: MemoryStore
) -> Iterator[TestClient]:
    app = create_app(settings, engine, run_queue=run_queue, memory=store)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Env:
    """The app, and the means to run what it queued as a worker would."""

    client: TestClient
    auth: Headers
    engine: Engine
    settings: Settings
    portal: Portal
    store: MemoryStore
    queue: RecordingQueue

    def executor(self, model: ScriptedModel) -> RunExecutor:
        services = Services(
            engine=self.engine,
            model=model,
            tools=ToolRegistry([*BUILTIN_TOOLS, *MEMORY_TOOLS]),
            portal=self.portal,
            settings=self.settings,
            memory=self.store,
            enqueue_run=self.queue.enqueue_run,
            after_run=self.queue.enqueue_facts,
        )
        return RunExecutor(services, "test-worker")

    def post(self, path: str, body: dict[str, Any], status: int = 201) -> Any:
        response = self.client.post(path, json=body, headers=self.auth)
        assert response.status_code == status, response.text
        return response.json()

    def talk(self, session_id: str, mark: str) -> str:
        """One message whose run saves and searches memories, then answers."""
        run = self.post(
            f"/v1/sessions/{session_id}/messages", {"content": f"I am {mark}-msg"}, status=202
        )
        model = ScriptedModel(
            [
                tool_calls_reply(
                    ("memory_save", {"content": f"The user's code is {mark}-saved"}),
                    ("memory_search", {"query": f"{mark} code"}),
                ),
                text_reply(f"Noted, {mark}-answer"),
            ]
        )
        self.executor(model).execute(uuid.UUID(run["id"]))
        assert support.load(self.engine, run["id"]).status == "succeeded"
        run_id: str = run["id"]
        return run_id

    def run_batch_item(self, run_id: uuid.UUID) -> None:
        """A batch run, answered with its own input (so the answer holds its user's mark)."""
        run = support.load(self.engine, run_id)
        self.executor(ScriptedModel([text_reply(f"re: {run.input}")])).execute(run_id)


@pytest.fixture
def env(
    client: TestClient,
    auth: Headers,
    engine: Engine,
    settings: Settings,
    portal: Portal,
    store: MemoryStore,
    run_queue: RecordingQueue,
) -> Env:
    return Env(client, auth, engine, settings, portal, store, run_queue)


def _columns(engine: Engine) -> list[tuple[str, str]]:
    """Every text-like column of every table of the schema, from the catalog."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
                "WHERE c.table_schema = current_schema() AND c.data_type = ANY(:types) "
                "ORDER BY 1, 2"
            ),
            {"types": list(SCANNED_TYPES)},
        ).all()
    return [(str(table), str(column)) for table, column in rows]


def _holding(engine: Engine, needle: str) -> dict[str, int]:
    """'table.column' -> how many rows hold `needle` (columns holding none left out)."""
    found = {}
    with engine.connect() as conn:
        for table, column in _columns(engine):
            count = conn.scalar(
                text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE :needle'),
                {"needle": f"%{needle}%"},
            )
            if count:
                found[f"{table}.{column}"] = int(count)
    return found


def _expected_counts(engine: Engine, user_id: str) -> dict[str, int]:
    """What an erase of `user_id` must report, counted independently beforehand."""
    sessions = "SELECT id FROM sessions WHERE user_id = :u"
    runs = f"SELECT id FROM runs WHERE session_id IN ({sessions})"
    queries = {
        "sessions": sessions,
        "messages": f"SELECT 1 FROM messages WHERE session_id IN ({sessions})",
        "runs": runs,
        "run_steps": f"SELECT 1 FROM run_steps WHERE run_id IN ({runs})",
        "tool_calls": f"SELECT 1 FROM tool_calls WHERE run_id IN ({runs})",
        "run_events": f"SELECT 1 FROM run_events WHERE run_id IN ({runs})",
        "memories": f"SELECT 1 FROM memories WHERE user_id = :u OR session_id IN ({sessions})",
        "blocks": "SELECT 1 FROM memory_blocks WHERE user_id = :u",
        "block_versions": "SELECT 1 FROM memory_block_versions v JOIN memory_blocks b "
        "ON b.id = v.block_id WHERE b.user_id = :u",
        "batch_items": "SELECT 1 FROM batch_items WHERE user_id = :u",
        "webhook_deliveries": f"SELECT 1 FROM webhook_deliveries WHERE run_id IN ({runs})",
        "schedules": "SELECT 1 FROM schedules WHERE user_id = :u",
    }
    with engine.connect() as conn:
        return {
            kind: int(conn.scalar(text(f"SELECT count(*) FROM ({q}) x"), {"u": user_id}) or 0)
            for kind, q in queries.items()
        }


def _populate(env: Env) -> dict[str, Any]:
    """Both users' data, by every route that stores some; returns the ids the test needs."""
    agent = env.post(
        "/v1/agents",
        {
            "name": "helper",
            "tools": ["memory_save", "memory_search", "core_memory_append"],
            "memory": {"extract_facts": True},
        },
    )
    agent_id = agent["id"]
    events = ["run.succeeded", "run.failed", "run.incomplete"]
    env.post("/v1/webhooks", {"url": "https://hooks.example.com/in", "events": events})
    made: dict[str, Any] = {"agent_id": agent_id, "runs": {}, "sessions": {}}
    for user, mark in ((USER_A, A_MARK), (USER_B, B_MARK)):
        for label in ("human", "notes"):
            for version in (1, 2):
                body = {"value": f"{mark}-{label}-v{version}", "user_id": user}
                response = env.client.put(
                    f"/v1/agents/{agent_id}/blocks/{label}", json=body, headers=env.auth
                )
                assert response.status_code == 200, response.text
        env.post(
            f"/v1/agents/{agent_id}/memories",
            {"content": f"{mark}-api memory", "user_id": user, "metadata": {"n": f"{mark}-m"}},
        )
        sessions = [
            env.post(
                f"/v1/agents/{agent_id}/sessions",
                {"user_id": user, "metadata": {"channel": f"{mark}-web"}},
            )["id"]
            for _ in range(2)
        ]
        made["sessions"][user] = sessions
        made["runs"][user] = [env.talk(sid, mark) for sid in sessions]
        env.post(
            "/v1/schedules",
            {"agent_id": agent_id, "input": f"{mark}-daily", "cron": "0 9 * * *", "user_id": user},
        )
    # A batch at concurrency 1: A's first item runs, then B's, then A's second is left queued.
    items = [
        {"input": f"{A_MARK}-batch-1", "user_id": USER_A, "metadata": {"k": f"{A_MARK}-bm"}},
        {"input": f"{B_MARK}-batch-1", "user_id": USER_B},
        {"input": f"{A_MARK}-batch-2", "user_id": USER_A},
    ]
    seen = set(env.queue.runs)
    batch = env.post("/v1/batches", {"agent_id": agent_id, "items": items, "concurrency": 1})
    made["batch_id"] = batch["id"]
    for _ in range(2):
        (run_id,) = [r for r in env.queue.runs if r not in seen]
        seen.add(run_id)
        env.run_batch_item(run_id)
    (queued,) = [r for r in env.queue.runs if r not in seen]
    made["queued_batch_run"] = queued
    return made


def test_an_erased_user_leaves_no_trace_and_nothing_comes_back(
    env: Env, engine: Engine, other_auth: Headers
) -> None:
    made = _populate(env)
    before = _holding(engine, A_MARK)
    # The data is really there, in every kind of row the issue names.
    for column in (
        "sessions.user_id",
        "sessions.metadata",
        "messages.content",
        "runs.input",
        "runs.output",
        "run_steps.context",
        "run_steps.output",
        "tool_calls.arguments",
        "tool_calls.result",
        "run_events.data",
        "memories.content",
        "memories.metadata",
        "memory_blocks.value",
        "memory_block_versions.value",
        "batch_items.input",
        "batch_items.output",
        "batch_items.user_id",
        "batch_items.metadata",
        "webhook_deliveries.payload",
        "schedules.input",
    ):
        assert column in before, (column, before)
    b_before = _holding(engine, B_MARK)
    expected = _expected_counts(engine, USER_A)
    assert min(expected.values()) > 0, expected

    # A fact extraction queued before the erase, run after it.
    first_run = made["runs"][USER_A][0]
    assert uuid.UUID(first_run) in env.queue.facts
    with transaction(engine) as session:
        run = support.load(engine, first_run)
        agent = agent_store.get_agent(session, run.tenant_id, run.agent_id)
        chat = agent_store.get_session(session, run.tenant_id, run.session_id)

    # Another tenant cannot erase A's user through A's agent (its own erase touches nothing).
    response = env.client.delete(
        f"/v1/agents/{made['agent_id']}/users/{USER_A}", headers=other_auth
    )
    assert response.status_code == 404
    response = env.client.delete(f"/v1/users/{USER_A}", headers=other_auth)
    assert response.status_code == 200
    assert response.json()["deleted"] == 0
    assert set(response.json()["erased"].values()) == {0}
    assert _holding(engine, A_MARK) == before

    response = env.client.delete(f"/v1/users/{USER_A}", headers=env.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["erased"] == expected
    assert body["deleted"] == expected["memories"] + expected["blocks"]

    assert _holding(engine, A_MARK) == {}
    assert _holding(engine, B_MARK) == b_before  # the other user keeps everything

    # Work that began before the erase stores nothing.
    model = ScriptedModel([text_reply('{"facts": [{"content": "Ann is qxa7-fact."}]}')])
    assert asyncio.run(extract_facts(model, env.store, agent, chat, run)) == 0
    assert model.requests == []  # the erased exchange never reached the model
    for kind in ("fact", "episodic"):  # an extraction or an episode in flight at the erase
        late = NewMemory(
            agent_id=agent.id,
            content=f"Ann is {A_MARK}-late",
            user_id=USER_A,
            session_id=chat.id,
            kind=kind,
            source_run_id=run.id,
        )
        with pytest.raises(ErasedSource):
            env.store.add(run.tenant_id, late)
    env.executor(ScriptedModel([])).execute(made["queued_batch_run"])  # its run is gone
    assert _holding(engine, A_MARK) == {}

    # The erased rows answer 404; the batch shows the item cancelled, its input gone.
    for path in (
        f"/v1/sessions/{made['sessions'][USER_A][0]}",
        f"/v1/runs/{first_run}",
        f"/v1/runs/{first_run}/steps",
    ):
        assert env.client.get(path, headers=env.auth).status_code == 404
    listed = env.client.get(
        f"/v1/agents/{made['agent_id']}/sessions", params={"user_id": USER_A}, headers=env.auth
    )
    assert listed.json()["data"] == []
    results = env.client.get(f"/v1/batches/{made['batch_id']}/results", headers=env.auth)
    assert results.status_code == 200
    assert A_MARK not in results.text
    assert B_MARK in results.text

    # A's new data after the erase is kept: a new session, a message, a memory.
    fresh = env.post(f"/v1/agents/{made['agent_id']}/sessions", {"user_id": USER_A})
    env.post(
        f"/v1/agents/{made['agent_id']}/memories",
        {"content": "new after erase", "session_id": fresh["id"]},
    )
    env.post(
        f"/v1/agents/{made['agent_id']}/memories",
        {"content": "new, without a session", "user_id": USER_A},
    )
    assert _holding(engine, "new after erase") == {"memories.content": 1}
    again = env.client.delete(f"/v1/users/{USER_A}/memories", headers=env.auth).json()
    assert again["erased"]["sessions"] == 1
    assert again["erased"]["memories"] == 2


def test_an_erase_for_one_agent_leaves_the_users_other_agents_alone(env: Env) -> None:
    first = env.post("/v1/agents", {"name": "first"})["id"]
    second = env.post("/v1/agents", {"name": "second"})["id"]
    for agent_id in (first, second):
        sid = env.post(f"/v1/agents/{agent_id}/sessions", {"user_id": USER_A})["id"]
        env.post(f"/v1/agents/{agent_id}/memories", {"content": f"m {agent_id}", "session_id": sid})
        env.client.put(
            f"/v1/agents/{agent_id}/blocks/human",
            json={"value": f"b {agent_id}", "user_id": USER_A},
            headers=env.auth,
        )
    response = env.client.delete(f"/v1/agents/{first}/users/{USER_A}", headers=env.auth)
    assert response.status_code == 200, response.text
    erased = response.json()["erased"]
    assert (erased["sessions"], erased["memories"], erased["blocks"]) == (1, 1, 1)
    assert _holding(env.engine, first) == {}
    kept = _holding(env.engine, second)
    assert kept["memories.content"] == 1
    assert kept["memory_blocks.value"] == 1
    listed = env.client.get(
        f"/v1/agents/{second}/sessions", params={"user_id": USER_A}, headers=env.auth
    )
    assert len(listed.json()["data"]) == 1
    # The old route is the same erase.
    old = env.client.delete(f"/v1/agents/{second}/users/{USER_A}/memories", headers=env.auth)
    assert old.json()["erased"]["sessions"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/{unknown}/users/ann",
        "/v1/agents/{unknown}/users/ann/memories",
        "/v1/agents/not-a-uuid/users/ann",
        "/v1/sessions/{unknown}",
        "/v1/sessions/not-a-uuid",
    ],
)
def test_unknown_ids_are_404(env: Env, path: str) -> None:
    response = env.client.delete(path.format(unknown=uuid.uuid4()), headers=env.auth)
    assert response.status_code == 404, response.text
    assert set(response.json()) == {"error"}


def test_an_unknown_user_erases_nothing(env: Env) -> None:
    response = env.client.delete("/v1/users/nobody", headers=env.auth)
    assert response.status_code == 200
    assert response.json() == {"deleted": 0, "erased": dict.fromkeys(response.json()["erased"], 0)}


@pytest.mark.parametrize("user_id", ["", "x" * 257])
def test_a_bad_user_id_is_422(env: Env, agent_id: str, user_id: str) -> None:
    path = f"/v1/users/{user_id}" if user_id else "/v1/users/"
    response = env.client.delete(path, headers=env.auth)
    assert response.status_code in (404, 422), response.text  # "" names no route
    if user_id:
        assert response.json()["error"]["param"] == "user_id"
