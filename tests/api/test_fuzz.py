"""Schema fuzzing: schemathesis' CLI against the served OpenAPI document, every operation, with
a real key on the real embedded Postgres (runs go to a recording queue, memories get the real
embedder). A response fails when it is a 5xx or differs from what the document says for it:
status code, content type, body schema (NDJSON: each line's).

Bounded here (part of `make test`); `make fuzz` sets AGENTMILL_FUZZ_EXAMPLES for the thorough
run. Deterministic: the same cases every run. tests/api/fuzz_hooks.py feeds live ids to the
generated requests and keeps those that would never end short."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.web.threaded import serve_in_thread
from memory.store import MemoryStore
from tests.api.support import RecordingQueue

HOOKS = Path(__file__).with_name("fuzz_hooks.py")
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("AGENTMILL_FUZZ_EXAMPLES", "20"))
"""Generated cases per operation in the fuzzing phase (the coverage phase adds its own)."""
BUDGET_S = 150 if EXAMPLES <= 20 else 3600
"""Longest the CLI may run before the test fails."""
OUTPUT_LINE_CHARS = 500
"""Printed output lines are cut here: a failing case may carry a body of megabytes."""


@pytest.fixture
def api_url(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, memory: MemoryStore
) -> Iterator[str]:
    """The API served over HTTP, with the memory store of the memory tests and no rate limit
    (the fuzzer sends a few thousand requests a minute)."""
    unlimited = settings.model_copy(update={"rate_limit_per_minute": 0})
    with serve_in_thread(create_app(unlimited, engine, run_queue, memory=memory)) as url:
        yield url


@pytest.mark.timeout(BUDGET_S + 60)
def test_every_operation_conforms(api_url: str, api_key: str, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        f"--config-file={CONFIG}",
        "run",
        f"{api_url}/openapi.json",
        f"--header=Authorization: Bearer {api_key}",
        f"--max-examples={EXAMPLES}",
        "--no-color",
        "--report=json",
        f"--report-dir={tmp_path / 'report'}",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "AGENTMILL_FUZZ_URL": api_url,
        "AGENTMILL_FUZZ_KEY": api_key,
    }
    # cwd: schemathesis and Hypothesis keep caches in the working directory.
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BUDGET_S
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(line[:OUTPUT_LINE_CHARS])
    code = done.returncode
    assert code == 0, "schemathesis failed: its report is in the captured output"


def test_every_error_is_documented_as_the_envelope(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            statuses = set(operation["responses"])
            if path.startswith("/v1/"):
                assert {"401", "429"} <= statuses, (method, path)
            for status in statuses - {"200", "201", "202", "204"}:
                content = operation["responses"][status]["content"]
                ref = content["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorEnvelope", (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's 422 shape
