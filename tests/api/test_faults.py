"""Fault injection on the real stack: `agentmill up` as a subprocess (embedded Postgres, the
bundled model, a worker on Redis, the API), parts of it killed while runs are in flight.

Each scenario starts a run, breaks something once the run is under way, and requires the run
to finish `succeeded`; tool side effects are counted from the record file the test tool
writes (tests/agents/e2e_tools.py) and must happen exactly once per call.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.up_process import Stack, start_stack
from tests.services import InferenceServer

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def stack(home: Path, tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    """`agentmill up` with its own inference server (the one the supervisor restarts)."""
    started = start_stack(home, tmp_path, redis_url)
    yield started
    started.http.close()
    assert started.up.terminate() == 0, started.up.output[-3000:]


LONG = "Write a long story about a lighthouse keeper and a storm, at least 300 words."


def _kill_mid_model_call(
    stack: Stack, kill: Callable[[], None], content: str = LONG, **agent: Any
) -> dict[str, Any]:
    run_id = stack.start_run(stack.agent(name=f"a{time.monotonic_ns()}", **agent), content)
    stack.wait_for(run_id, "message.delta")
    kill()
    return stack.finished(run_id)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_the_inference_server_dies_mid_run(stack: Stack, sig: signal.Signals) -> None:
    before = stack.child("inference").pid
    run = _kill_mid_model_call(stack, lambda: os.kill(stack.child("inference").pid, sig))
    assert run["status"] == "succeeded", run
    assert run["output"]
    assert stack.child("inference").pid != before
    assert f"inference exited with signal {sig.name}; restarting it" in stack.up.output
    assert stack.http.get("/readyz").json()["components"]["inference"]["status"] == "ok"


def test_the_embedded_postgres_restarts_mid_run(stack: Stack, home: Path) -> None:
    # SIGQUIT is Postgres's immediate shutdown: every backend dies at once, as in a crash;
    # the supervisor starts it again (with crash recovery) and the run carries on.
    run = _kill_mid_model_call(stack, lambda: stack.postmaster(home).send_signal(signal.SIGQUIT))
    assert run["status"] == "succeeded", run
    assert run["error"] is None
    assert "embedded postgres in" in stack.up.output
    assert "is not running; starting it again" in stack.up.output


def test_a_tool_that_outlives_the_lease_runs_once(stack: Stack) -> None:
    agent = stack.agent(name="recorder", tools=["slow_record"], tool_choice="required")
    run_id = stack.start_run(agent, "Record the note 'hello'.")
    run = stack.finished(run_id)
    assert run["status"] in ("succeeded", "incomplete"), run
    effects = stack.tool_effects()
    assert effects, stack.record.read_text() if stack.record.exists() else "no record"
    assert set(effects.values()) == {1}  # each call's effect exactly once


def test_a_model_server_down_past_the_retry_budget(
    home: Path, tmp_path: Path, redis_url: str
) -> None:
    # Our own inference server outside `up`, so the test decides how long it is down.
    server = InferenceServer(tmp_path, tmp_path / "inference-home", inference_context="2048")
    port = server.port
    stack = start_stack(
        home,
        tmp_path,
        redis_url,
        AGENTMILL_INFERENCE_URL=server.base + "/v1",
        AGENTMILL_MODEL_RETRY_S="3",
    )
    try:
        agent = stack.agent(name="patient")
        run_id = stack.start_run(agent, LONG)
        stack.wait_for(run_id, "message.delta")
        server.process.kill()  # no graceful end for the stream in flight
        server.process.wait()
        time.sleep(12)  # > the 3 s retry budget plus the 4 s lease: the attempt gives up
        assert stack.http.get(f"/v1/runs/{run_id}").json()["status"] != "failed"
        server = _serve_on(tmp_path, port)
        run = stack.finished(run_id)
        assert run["status"] == "succeeded", run
        assert run["attempts"] >= 2, run  # the first attempt handed the run back; one resumed
    finally:
        stack.http.close()
        stack.up.terminate()
        server.stop()


def _serve_on(tmp_path: Path, port: int) -> InferenceServer:
    """The inference server again, on the same port (the workers' configured URL)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return InferenceServer(
                tmp_path, tmp_path / "inference-home", port=port, inference_context="2048"
            )
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
