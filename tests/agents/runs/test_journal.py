"""Runs ride out outages (agents/runs/journal.py, agents/runs/model_calls.py): a model server
that is down is waited out, an outage past the budget hands the run back for a later attempt
instead of failing it, a database that drops its connections mid-step is retried, and what
fails a run (a rejection, a bug) says so in a fixed sentence, never with the provider's or
driver's text."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from agents.errors import INTERNAL_ERROR_MESSAGE
from agents.tools.registry import tool
from agents.worker.sweeper import sweep_once
from core.config import Settings
from inference.client.model_client import (
    ChatRequest,
    ChatResult,
    DeltaSink,
    ModelRejected,
    ModelUnavailable,
)
from inference.client.router import RouterClient
from inference.client.scripted import ScriptedModel, scripted_tokens, text_reply, tool_calls_reply
from tests.agents.conftest import World, WorldFactory
from tests.agents.fake_provider import LEAKY_DETAIL, LEAKY_WORDS, fake_provider
from tests.agents.pg_proxy import PgProxy
from tests.api.support import RecordingQueue


def event_types(world: World, run_id: uuid.UUID) -> list[str]:
    return [e.type for e in world.events(run_id)]


def assert_no_leak(world: World, run_id: uuid.UUID) -> None:
    """Nothing a tenant can read of the run names the provider's hosts, ports or secrets."""
    stored = json.dumps([world.run(run_id).error, [e.data for e in world.events(run_id)]])
    assert not [word for word in LEAKY_WORDS if word in stored], stored


class Outage:
    """A model that raises ModelUnavailable while `down`, then answers."""

    def __init__(self, answer: str = "back") -> None:
        self.down = True
        self.answer = answer
        self.calls = 0

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        self.calls += 1
        if self.down:
            raise ModelUnavailable("unreachable")
        return text_reply(self.answer)

    async def count_tokens(self, model: str, prompts: Sequence[list[dict[str, Any]]]) -> list[int]:
        return [scripted_tokens(prompt) for prompt in prompts]


def test_a_model_server_that_is_down_for_a_while_is_waited_out(world: World) -> None:
    run = world.message("hello")
    model = ScriptedModel(
        [ModelUnavailable("unreachable"), ModelUnavailable("timeout"), text_reply("hi")]
    )
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert (done.status, done.output, done.attempts) == ("succeeded", "hi", 1)
    waits = [e.data for e in world.events(run.id) if e.type == "run.waiting"]
    assert [w["reason"] for w in waits] == ["unreachable", "timeout"]
    assert waits[0]["message"] == "the model server could not be reached"
    assert all(0 < w["retry_in_s"] <= 1.0 for w in waits)
    assert model.remaining == 0


def test_an_outage_past_the_budget_hands_the_run_back_and_a_later_attempt_finishes(
    new_world: WorldFactory, database_url: str, tmp_path: Path
) -> None:
    # One crash would already exhaust run_max_attempts=1: hand-backs must not count as crashes.
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        run_lease_s=1.5,
        model_retry_s=0.8,
        run_max_attempts=1,
    )
    world = new_world(settings)
    run = world.message("hello")
    model = Outage()
    queue = RecordingQueue()
    for attempt in (1, 2):
        world.executor(model, owner=f"worker-{attempt}").execute(run.id)
        held = world.run(run.id)
        assert (held.status, held.error, held.outage_yields) == ("running", None, attempt)
        assert event_types(world, run.id)[-1] == "run.released"
        world.executor(model, owner="eager").execute(run.id)  # the lease still holds: no-op
        assert world.run(run.id).attempts == attempt
        time.sleep(1.6)  # the lease lapses; the sweeper sends the run again
        assert sweep_once(world.engine, queue, interval_s=0.01) == 1
        assert queue.runs[-1] == run.id

    model.down = False
    world.executor(model, owner="worker-3").execute(run.id)
    done = world.run(run.id)
    assert (done.status, done.output) == ("succeeded", "back")
    assert (done.attempts, done.outage_yields) == (3, 2)
    released = [e.data for e in world.events(run.id) if e.type == "run.released"]
    assert released == [
        {
            "run_id": str(run.id),
            "reason": "unreachable",
            "message": "the model server could not be reached",
            "attempt": n,
        }
        for n in (1, 2)
    ]


# litellm's stream assembly reads a pydantic attribute deprecated in 2.11 (its warning, not ours).
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
def test_the_real_client_waits_out_a_restarting_provider_and_fails_on_a_rejection(
    new_world: WorldFactory, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_provider() as provider:
        route = {"model": "openai/fake", "api_base": provider.url, "api_key": "k"}
        settings = Settings(
            home=tmp_path / "home",
            database_url=database_url,
            models={"remote": route},
            model_retry_s=30.0,
        )
        world = new_world(settings)
        world.update_agent(model="remote", tools=[])
        client = RouterClient(settings, "unused")

        # Restarting: more failures than the router's own retries of one call (3 requests).
        provider.status, provider.failures_left = 503, 4
        run = world.message("are you there?")
        world.executor(client).execute(run.id)
        done = world.run(run.id)
        assert (done.status, done.output) == ("succeeded", "back again")
        assert "run.waiting" in event_types(world, run.id)
        assert_no_leak(world, run.id)

        provider.status, provider.failures_left = 400, None
        caplog.set_level(logging.WARNING, logger="agents.runs.executor")
        rejected = world.message("again")
        world.executor(client).execute(rejected.id)
        failed = world.run(rejected.id)
        assert failed.status == "failed"
        assert failed.error == {
            "type": "model_error",
            "message": "the model server rejected the request as invalid",
        }
        assert_no_leak(world, rejected.id)
        # The detail is in the log, with the run id, for the operator.
        logged = [r.getMessage() for r in caplog.records if str(rejected.id) in r.getMessage()]
        assert any(LEAKY_DETAIL[:20] in line for line in logged), logged


def test_a_permanent_model_error_fails_at_once_without_retrying(world: World) -> None:
    run = world.message("a very long conversation")
    model = ScriptedModel([ModelRejected("context_window")])
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert done.error == {
        "type": "model_error",
        "message": "the conversation no longer fits the model's context window",
    }
    assert "run.waiting" not in event_types(world, run.id)


def test_a_bug_fails_the_run_with_a_fixed_message(world: World) -> None:
    run = world.message("hi")
    secret = RuntimeError(f"bug while talking to {LEAKY_DETAIL}")
    world.executor(ScriptedModel([secret])).execute(run.id)
    done = world.run(run.id)
    assert done.error == {"type": "internal_error", "message": INTERNAL_ERROR_MESSAGE}
    assert_no_leak(world, run.id)


def _outage_tool(proxy: PgProxy, seconds: float) -> Any:
    calls: list[str] = []

    def cut_the_database(note: str) -> str:
        """Cut the worker off its database for a while (the tool itself still returns).

        Args:
            note: Anything.
        """
        calls.append(note)
        proxy.cut()
        threading.Timer(seconds, proxy.restore).start()
        return f"cut for {seconds} s"

    return tool(cut_the_database), calls


def test_a_database_outage_mid_step_is_waited_out(
    new_world: WorldFactory,
    database_url: str,
    tmp_path: Path,
    pg_proxy: PgProxy,
    proxied_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url=database_url, run_lease_s=10.0, db_retry_s=15.0
    )
    cut, calls = _outage_tool(pg_proxy, 2.0)
    world = new_world(settings, extra_tools=[cut])
    run = world.message("cut it")
    model = ScriptedModel(
        [tool_calls_reply(("cut_the_database", {"note": "once"})), text_reply("survived")]
    )
    caplog.set_level(logging.WARNING, logger="agents.runs.journal")
    world.executor(model, engine=proxied_engine).execute(run.id)

    done = world.run(run.id)
    assert (done.status, done.output, done.attempts) == ("succeeded", "survived", 1)
    assert calls == ["once"]
    (call,) = world.steps(run.id)[0].tool_calls
    assert (call.result, call.starts) == ("cut for 2.0 s", 1)
    retried = [r for r in caplog.records if "the database connection was lost" in r.getMessage()]
    assert retried  # the result's write met the outage and was retried
    assert all(str(run.id) in r.getMessage() for r in retried)


def test_connections_terminated_mid_step_are_replaced(
    new_world: WorldFactory, database_url: str
) -> None:
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    killed: list[int] = []

    def terminate_backends() -> str:
        """Terminate every other connection to the database (as a failover does)."""
        with psycopg.connect(conninfo, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        killed.append(len(rows))
        return "terminated"

    world = new_world(extra_tools=[terminate_backends])
    run = world.message("fail over")
    model = ScriptedModel([tool_calls_reply(("terminate_backends", {})), text_reply("still here")])
    world.executor(model).execute(run.id)

    done = world.run(run.id)
    assert (done.status, done.output) == ("succeeded", "still here")
    assert len(killed) == 1
    assert killed[0] >= 1  # the worker's pooled connections, at least
    assert world.steps(run.id)[0].tool_calls[0].result == "terminated"


def test_a_database_outage_past_the_budget_leaves_the_run_to_a_later_attempt(
    new_world: WorldFactory,
    database_url: str,
    tmp_path: Path,
    pg_proxy: PgProxy,
    proxied_engine: Engine,
) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url=database_url, run_lease_s=2.0, db_retry_s=1.0
    )
    cut, calls = _outage_tool(pg_proxy, 3600.0)  # restored by hand below
    world = new_world(settings, extra_tools=[cut])
    run = world.message("cut it")
    world.executor(
        ScriptedModel([tool_calls_reply(("cut_the_database", {"note": "once"}))]),
        owner="cut-off",
        engine=proxied_engine,
    ).execute(run.id)

    stopped = world.run(run.id)
    assert (stopped.status, stopped.error) == ("running", None)  # not failed
    (call,) = world.steps(run.id)[0].tool_calls
    assert call.started_at is not None
    assert call.result is None  # the result could not be stored

    pg_proxy.restore()
    time.sleep(2.1)  # its lease lapses
    world.executor(ScriptedModel([text_reply("resumed")]), owner="next").execute(run.id)
    done = world.run(run.id)
    assert (done.status, done.output, done.attempts) == ("succeeded", "resumed", 2)
    assert calls == ["once"]  # not idempotent, so not run again: its outcome is unknown
    (call,) = world.steps(run.id)[0].tool_calls
    assert call.is_error
    assert (call.result or "").startswith("outcome unknown")
