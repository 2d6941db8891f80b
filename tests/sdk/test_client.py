"""The SDK against a live stack: the real API served by uvicorn on loopback, a real Celery
worker on Redis, the real inference server with the bundled model, real embedded Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import agentmill
import pytest
from agentmill import MessageEvent, RunFinishedEvent, RunQueuedEvent
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.web.threaded import free_port, serve_in_thread
from inference.embedder import SentenceTransformerEmbedder
from memory.store import MemoryStore
from tests.api.support import RecordingQueue


@pytest.fixture
def memory_url(
    settings: Settings, engine: Engine, embedder: SentenceTransformerEmbedder
) -> Iterator[str]:
    """The API alone, its memory store on the session's (already loaded) embedding model; runs
    it is sent stay queued."""
    memory = MemoryStore(engine, embedder, settings)
    app = create_app(settings, engine, run_queue=RecordingQueue(), memory=memory)
    with serve_in_thread(app) as url:
        yield url


def test_me_health_and_errors(api_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=api_url) as client:
        assert client.healthy()
        assert client.ready()
        me = client.me()
        assert me.tenant_name == "acme"
    with (
        agentmill.Client("am_000000000000_" + "x" * 43, base_url=api_url) as bad,
        pytest.raises(agentmill.AuthenticationError) as raised,
    ):
        bad.me()
    assert raised.value.status == 401
    assert raised.value.type == "authentication_error"


def test_unreachable_server_is_not_healthy() -> None:
    with agentmill.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2) as client:
        assert not client.healthy()
        assert not client.ready()


def test_agents_crud_pagination_and_errors(api_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=api_url) as client:
        created = [client.agents.create(f"agent-{n}", metadata={"n": n}) for n in range(3)]
        assert [a.name for a in client.agents.list(limit=2)] == ["agent-0", "agent-1", "agent-2"]
        updated = client.agents.update(
            created[0].id, instructions="Answer in French.", memory={"recall_k": 2}
        )
        assert (updated.instructions, updated.memory.recall_k) == ("Answer in French.", 2)
        assert updated.memory.history_messages == 20  # merged, not replaced
        with pytest.raises(agentmill.ConflictError) as taken:
            client.agents.create("agent-1")
        assert taken.value.status == 409
        with pytest.raises(agentmill.UnprocessableEntityError) as invalid:
            client.agents.create("bad", model="no-such-model")
        assert invalid.value.param == "model"
        client.agents.delete(created[2].id)
        with pytest.raises(agentmill.NotFoundError):
            client.agents.get(created[2].id)
        with pytest.raises(agentmill.NotFoundError):
            client.sessions.get(uuid.uuid4())

    async def names() -> list[str]:
        async with agentmill.AsyncClient(api_key, base_url=api_url) as client:
            return [agent.name async for agent in client.agents.list(limit=1)]

    assert asyncio.run(names()) == ["agent-0", "agent-1"]


@pytest.mark.timeout(400)
def test_send_and_stream_against_a_live_worker(live_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=live_url) as client:
        agent = client.agents.create(
            "sdk",
            instructions="You are a concise assistant.",
            max_steps=3,
            memory={"extract_facts": False},
        )
        session = client.sessions.create(agent.id, user_id="ada", metadata={"via": "sdk"})
        assert session.user_id == "ada"

        run = client.sessions.send(session.id, "Say hello in one short sentence.", timeout_s=240)
        assert run.finished
        assert run.status in ("succeeded", "incomplete"), run.error
        assert run.session_id == session.id
        assert client.runs.get(run.id).status == run.status
        assert client.runs.steps(run.id)[0].step == 1

        with client.sessions.stream(session.id, "Now say goodbye, briefly.") as stream:
            events = list(stream)
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert isinstance(events[0], RunQueuedEvent)
        assert isinstance(events[-1], RunFinishedEvent)
        assert events[-1].type.startswith("run.")
        assert events[-1].type in ("run.succeeded", "run.incomplete")
        streamed = client.runs.get(events[0].run_id)
        assert streamed.status == events[-1].status
        if streamed.status == "succeeded":
            answer = [e for e in events if isinstance(e, MessageEvent)]
            assert answer[-1].content == streamed.output

        # The stored log replays exactly, from any position.
        replay = list(client.runs.events(streamed.id, after=2))
        assert [e.id for e in replay] == [e.id for e in events[2:]]

        messages = list(client.sessions.messages(session.id, limit=1))  # one per page
        assert [m.seq for m in messages] == sorted(m.seq for m in messages)
        assert messages[0].role == "user"
        if run.status == "succeeded":
            assert [m.role for m in messages][:2] == ["user", "assistant"]
        assert client.runs.cancel(run.id).status == run.status  # finished: unchanged


def test_memories_and_blocks_add_search_delete_erase(memory_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=memory_url) as client:
        agent = client.agents.create("rememberer")
        tea = client.memories.add(
            agent.id, "Ann drinks green tea every morning.", user_id="ann", metadata={"src": "crm"}
        )
        assert not tea.deduplicated
        again = client.memories.add(agent.id, "Ann drinks green tea every morning.", user_id="ann")
        assert again.deduplicated
        assert again.id == tea.id
        lisbon = client.memories.add(agent.id, "Bob's favourite city is Lisbon.", user_id="bob")

        hits = client.memories.search(agent.id, "What does Ann drink?", k=3, user_id="ann")
        assert [hit.memory.id for hit in hits] == [tea.id]
        assert client.memories.search(agent.id, "Which city does Bob like?", k=1)[0].memory.id == (
            lisbon.id
        )
        assert {m.id for m in client.memories.list(agent.id, limit=1)} == {tea.id, lisbon.id}
        assert [m.id for m in client.memories.list(agent.id, metadata={"src": "crm"})] == [tea.id]

        client.blocks.set(agent.id, "persona", "I am a terse assistant.")
        client.blocks.set(agent.id, "human", "Name: Ann.", user_id="ann")
        client.blocks.set(agent.id, "human", "Name: Ann. Drinks tea.", user_id="ann")
        listed = client.blocks.list(agent.id, user_id="ann")
        assert [(b.label, b.user_id) for b in listed] == [("human", "ann"), ("persona", None)]
        history = client.blocks.history(agent.id, "human", user_id="ann")
        assert [v.version for v in history] == [1, 2]
        with pytest.raises(agentmill.PayloadTooLargeError):
            client.blocks.set(agent.id, "persona", "x" * 200, char_limit=100)

        client.memories.delete(lisbon.id)
        with pytest.raises(agentmill.NotFoundError):
            client.memories.get(lisbon.id)
        assert client.memories.erase_user("ann", agent_id=agent.id) == 2  # a memory, a block
        assert client.memories.search(agent.id, "tea", user_id="ann") == []
        assert [b.label for b in client.blocks.list(agent.id, user_id="ann")] == ["persona"]


def test_sessions_listed_by_user_across_pages_and_deleted_with_counts(
    memory_url: str, api_key: str
) -> None:
    with agentmill.Client(api_key, base_url=memory_url) as client:
        agent = client.agents.create("lister")
        ann = [client.sessions.create(agent.id, user_id="ann") for _ in range(3)]
        bob = client.sessions.create(agent.id, user_id="bob")

        newest_first = [s.id for s in reversed(ann)]
        assert [s.id for s in client.sessions.list(agent.id, user_id="ann", limit=2)] == (
            newest_first
        )
        assert [s.id for s in client.sessions.list(agent.id, limit=3)] == [bob.id, *newest_first]
        page = client.sessions.page(agent.id, user_id="ann", limit=2)
        assert [s.id for s in page.data] == newest_first[:2]
        rest = client.sessions.page(agent.id, user_id="ann", limit=2, cursor=page.next_cursor)
        assert ([s.id for s in rest.data], rest.next_cursor) == (newest_first[2:], None)

        # A message (its run stays queued: no worker) and a memory written in the session.
        with pytest.raises(agentmill.RunTimeoutError):
            client.sessions.send(ann[0].id, "Hello there.", timeout_s=0.2)
        client.memories.add(agent.id, "Ann is learning Portuguese.", session_id=ann[0].id)
        erased = client.sessions.delete(ann[0].id)
        assert isinstance(erased, agentmill.ErasedCounts)
        assert (erased.sessions, erased.messages, erased.runs, erased.memories) == (1, 1, 1, 1)
        assert (erased.blocks, erased.block_versions, erased.batch_items) == (0, 0, 0)
        with pytest.raises(agentmill.NotFoundError):
            client.sessions.get(ann[0].id)
        with pytest.raises(agentmill.NotFoundError):
            client.sessions.delete(ann[0].id)
        assert list(client.memories.list(agent.id, user_id="ann")) == []

    async def listed() -> list[uuid.UUID]:
        async with agentmill.AsyncClient(api_key, base_url=memory_url) as am:
            return [s.id async for s in am.sessions.list(agent.id, user_id="ann", limit=1)]

    assert asyncio.run(listed()) == newest_first[:2]


def test_memory_update_block_history_pages_and_erase_counts(memory_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=memory_url) as client:
        agent = client.agents.create("updater")
        tea = client.memories.add(agent.id, "Ann drinks green tea every morning.", user_id="ann")
        job = client.memories.add(agent.id, "Ann works as a nurse in Porto.", user_id="ann")

        updated = client.memories.update(
            job.id, content="Ann works as a surgeon in Porto.", importance=0.9
        )
        assert (updated.content, updated.importance) == ("Ann works as a surgeon in Porto.", 0.9)
        assert updated.user_id == "ann"
        assert client.memories.update(job.id, metadata={"src": "crm"}).metadata == {"src": "crm"}
        hits = client.memories.search(agent.id, "What is Ann's job?", k=1, user_id="ann")
        assert [hit.memory.id for hit in hits] == [job.id]  # embedded again
        with pytest.raises(agentmill.ConflictError) as duplicate:
            client.memories.update(job.id, content=tea.content)  # tea holds it
        assert duplicate.value.status == 409
        with pytest.raises(agentmill.UnprocessableEntityError) as empty:
            client.memories.update(job.id)
        assert empty.value.status == 422
        assert client.memories.get(job.id).content == "Ann works as a surgeon in Porto."

        for n in range(1, 4):
            client.blocks.set(agent.id, "human", f"Name: Ann. Visit {n}.", user_id="ann")
        versions = client.blocks.history(agent.id, "human", user_id="ann", limit=2)
        assert [(v.version, v.value) for v in versions] == [
            (n, f"Name: Ann. Visit {n}.") for n in range(1, 4)
        ]
        first = client.blocks.history_page(agent.id, "human", user_id="ann", limit=2)
        assert [v.version for v in first.data] == [1, 2]
        assert first.next_cursor is not None
        last = client.blocks.history_page(
            agent.id, "human", user_id="ann", limit=2, cursor=first.next_cursor
        )
        assert ([v.version for v in last.data], last.next_cursor) == ([3], None)

        client.sessions.create(agent.id, user_id="ann")
        report = client.memories.erase("ann", agent_id=agent.id)
        assert isinstance(report, agentmill.Erased)
        assert report.deleted == 3  # two memories, one block
        counts = report.erased
        assert (counts.memories, counts.blocks, counts.block_versions) == (2, 1, 3)
        assert (counts.sessions, counts.messages, counts.runs) == (1, 0, 0)
        assert list(client.sessions.list(agent.id, user_id="ann")) == []
        assert client.memories.erase("ann").erased == agentmill.ErasedCounts(
            **dict.fromkeys(agentmill.ErasedCounts.model_fields, 0)
        )

        # A user id ending in "/memories" is that user's, not user "org"'s (the older form).
        org = client.memories.add(agent.id, "Org pays yearly.", user_id="org")
        client.memories.add(agent.id, "Org's memories team uses Slack.", user_id="org/memories")
        assert client.memories.erase_user("org/memories") == 1
        assert [m.id for m in client.memories.list(agent.id, user_id="org")] == [org.id]
        assert client.memories.erase_user("org", agent_id=agent.id) == 1


@pytest.mark.timeout(400)
def test_batch_create_wait_and_results_against_a_live_worker(live_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=live_url) as client:
        agent = client.agents.create(
            "batcher", instructions="Answer in one short sentence.", max_steps=2
        )
        batch = client.batches.create(
            agent.id,
            ["Say hello.", {"input": "Say goodbye.", "user_id": "ann", "metadata": {"n": 2}}],
            concurrency=2,
        )
        assert batch.counts.total == 2
        seen: list[agentmill.Batch] = []
        done = client.batches.wait(batch.id, on_progress=seen.append, poll_s=0.5, timeout_s=300)
        assert done.status == "completed"
        assert done.counts.finished == 2
        assert seen[-1] == done
        assert [b.counts.finished for b in seen] == sorted(b.counts.finished for b in seen)

        with client.batches.results(batch.id, wait=True) as results:  # ended: returns at once
            lines = list(results)
        assert [r.position for r in lines] == [0, 1]
        assert (lines[1].user_id, lines[1].metadata) == ("ann", {"n": 2})
        for line in lines:
            assert line.status in ("succeeded", "failed"), line
            assert line.run_id is not None
            assert client.runs.get(line.run_id).batch_id == batch.id
        assert client.batches.cancel(batch.id).status == "completed"  # ended: unchanged
        assert [b.id for b in client.batches.list()] == [batch.id]
