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

from agents.queue import RunQueue, make_celery
from api.app import create_app
from core.config import Settings
from core.web.threaded import free_port, serve_in_thread
from tests.services import WorkerFactory


@pytest.fixture
def base_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """The API alone (no worker)."""
    with serve_in_thread(create_app(settings, engine)) as url:
        yield url


@pytest.fixture
def live_url(
    settings: Settings,
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
) -> Iterator[str]:
    """The API sending runs to a real worker over Redis, served over HTTP."""
    start_worker(
        {
            "AGENTMILL_DATABASE_URL": database_url,
            "AGENTMILL_BROKER_URL": redis_url,
            "AGENTMILL_INFERENCE_URL": inference_url,
        }
    )
    producer = settings.model_copy(update={"broker_url": redis_url})
    queue = RunQueue(make_celery(producer, database_url))
    with serve_in_thread(create_app(producer, engine, run_queue=queue)) as url:
        yield url


def test_me_health_and_errors(base_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=base_url) as client:
        assert client.healthy()
        assert client.ready()
        me = client.me()
        assert me.tenant_name == "acme"
    with (
        agentmill.Client("am_000000000000_" + "x" * 43, base_url=base_url) as bad,
        pytest.raises(agentmill.AuthenticationError) as raised,
    ):
        bad.me()
    assert raised.value.status == 401
    assert raised.value.type == "authentication_error"


def test_unreachable_server_is_not_healthy() -> None:
    with agentmill.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2) as client:
        assert not client.healthy()
        assert not client.ready()


def test_agents_crud_pagination_and_errors(base_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=base_url) as client:
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
        async with agentmill.AsyncClient(api_key, base_url=base_url) as client:
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
