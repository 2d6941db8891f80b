"""A run is one trace: the REST request, the queue, the worker's run, each step, its model call
(and inside it the inference server's request and generation) and its tool call, exported by
the real processes (`agentmill api`, `agentmill worker`, `agentmill inference`) with the
standard OTLP exporter to a receiver the test runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from core.db import transaction
from core.tenants import create_key, ensure_tenant
from tests.agents.worker.test_main import make_agent, worker_env
from tests.cli.up_process import free_port
from tests.observability.otlp_receiver import Received, ReceivedSpan, otlp_receiver
from tests.services import ROOT, InferenceServer, WorkerFactory

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def receiver() -> Iterator[Received]:
    with otlp_receiver() as found:
        yield found


@pytest.fixture
def traced_inference(
    receiver: Received, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InferenceServer]:
    """An inference server of the test's own, tracing to the receiver."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    server = InferenceServer(
        tmp_path,
        tmp_path / "inference-home",
        inference_context="2048",
        otel_exporter_otlp_endpoint=receiver.url,
    )
    yield server
    server.stop()


def serve_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    names = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def test_a_run_is_one_trace_from_the_request_to_its_tool_call(
    engine: Engine,
    database_url: str,
    redis_url: str,
    start_worker: WorkerFactory,
    receiver: Received,
    tmp_path: Path,
    traced_inference: InferenceServer,
) -> None:
    record = tmp_path / "record.txt"
    traced = {
        "AGENTMILL_OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "AGENTMILL_HOME": str(tmp_path / "home"),
    }
    inference_url = traced_inference.base + "/v1"
    env = worker_env(
        database_url,
        redis_url,
        inference_url,
        AGENTMILL_TEST_RECORD=str(record),
        AGENTMILL_TEST_TOOL_SECONDS="0",
        **traced,
    )
    start_worker(env)
    api, url = serve_api(env, tmp_path / "api.log")
    try:
        tenant_id, agent_id = make_agent(engine, ["slow_record"], max_steps=2)
        with transaction(engine) as session:
            tenant, _ = ensure_tenant(session, "e2e")
            assert tenant == tenant_id
            key = create_key(session, tenant_id, name="traces")
        auth = {"Authorization": f"Bearer {key}"}
        chat = httpx.post(
            f"{url}/v1/agents/{agent_id}/sessions", json={"user_id": "ann"}, headers=auth
        ).json()
        answer = httpx.post(
            f"{url}/v1/sessions/{chat['id']}/messages",
            json={"content": "Record the note 'hello'.", "wait": True, "timeout_s": 120},
            headers=auth,
            timeout=130,
        )
        assert answer.status_code == 200, answer.text
        run = answer.json()
        assert run["status"] in ("succeeded", "incomplete"), run  # the small model may go on

        deadline = time.monotonic() + 30
        while True:
            spans = receiver.snapshot()
            runs = [s for s in spans if s.attributes.get("agentmill.run.id") == run["id"]]
            tools = [s for s in spans if s.name.startswith("execute_tool")]
            generations = [s for s in spans if s.name.startswith("generate ")]
            if (
                runs
                and tools
                and generations
                and any(s.name.startswith("POST /v1/sessions") for s in spans)
            ):
                break
            assert time.monotonic() < deadline, sorted({s.name for s in spans})
            time.sleep(0.3)
    finally:
        api.terminate()
        api.wait(10)

    (invoke,) = runs
    trace_spans = [s for s in spans if s.trace_id == invoke.trace_id]
    by_id = {s.span_id: s for s in trace_spans}
    names = {s.name for s in trace_spans}
    (request,) = [s for s in trace_spans if s.name == "POST /v1/sessions/{session_id}/messages"]
    assert request.component == "api"
    assert invoke.component == "worker"
    assert invoke.name == f"invoke_agent {invoke.attributes['gen_ai.agent.name']}"
    assert invoke.attributes["agentmill.run.status"] == run["status"]
    assert invoke.attributes["gen_ai.conversation.id"] == chat["id"]
    assert f"run.{run['status']}" in invoke.events
    # The worker's run descends from the request, through the queue (Celery's spans).
    chain = ancestors(invoke, by_id)
    assert any(name.startswith("run/") for name in chain), chain
    assert any(name.startswith("apply_async/") for name in chain), chain
    assert request.name in chain, chain
    assert "step 1" in names
    chat_spans = [s for s in trace_spans if s.name.startswith("chat ")]
    assert chat_spans
    assert all(ancestors(s, by_id)[0].startswith("step ") for s in chat_spans)
    assert all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in chat_spans)
    (tool,) = [s for s in trace_spans if s.name == "execute_tool slow_record"]
    assert tool.attributes["gen_ai.tool.name"] == "slow_record"
    assert ancestors(tool, by_id)[:2] == ["step 1", invoke.name]
    db = [s for s in trace_spans if s.attributes.get("db.system.name") == "postgresql"]
    assert {s.component for s in db} == {"api", "worker"}  # both sides' statements
    # Inside each model call: the inference server's request, and its generation with tokens.
    served = [s for s in trace_spans if s.component == "inference"]
    requests = [s for s in served if s.name == "POST /v1/chat/completions"]
    assert requests, sorted({s.name for s in served})
    assert all(any(a.startswith("chat ") for a in ancestors(r, by_id)) for r in requests)
    generated = [s for s in served if s.name.startswith("generate ")]
    assert len(generated) == len(requests)
    for span in generated:
        assert "POST /v1/chat/completions" in ancestors(span, by_id)
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
        assert span.attributes["gen_ai.usage.output_tokens"] > 0
        assert span.attributes["agentmill.inference.constraint"] in ("tool_or_text", "tool_call")
        assert "first_token" in span.events
