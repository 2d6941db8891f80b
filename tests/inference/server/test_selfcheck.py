"""The start-up decode check: `agentmill inference` refuses to serve an engine that cannot
decode, with one line that names the engine, the CPU and the fix, and /readyz means ready."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.web.threaded import free_port
from inference.server.selfcheck import cpu_summary, llama_build_features
from tests.inference.conftest import run_in_child
from tests.services import ROOT, InferenceServer

# Loaded by every Python process started with this directory on PYTHONPATH (`site` imports
# sitecustomize), so the start-up check's own child process gets the fault too.
SEGFAULT_ON_DECODE = """
import ctypes
import inference.engines.llama.native as native

def decode(self, model):
    ctypes.string_at(0)  # a real SIGSEGV in native code, as a bad llama.cpp build gives

native.Batch.decode = decode
"""
ERROR_ON_GENERATE = """
import inference.engines.llama.engine as engine

async def generate(self, request):
    raise RuntimeError("decoder exploded")
    yield

engine.LlamaEngine.generate = generate
"""


def _inference_with(tmp_path: Path, fault: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(fault)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    env["AGENTMILL_HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "inference", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_native_crash_at_decode_exits_with_the_diagnosis(tmp_path: Path) -> None:
    done = _inference_with(tmp_path, SEGFAULT_ON_DECODE)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("agentmill: error:")]
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert "the llama.cpp engine was killed by SIGSEGV at its start-up decode" in line
    assert "CPU: " + cpu_summary() in line
    assert "llama.cpp build uses: " in line
    assert "AVX2" in line
    assert "make clean install" in line
    assert "Fatal Python error" not in done.stderr.split("agentmill: error:")[-1]


def test_a_failing_decode_exits_with_the_error(tmp_path: Path) -> None:
    done = _inference_with(tmp_path, ERROR_ON_GENERATE)
    assert done.returncode == 1
    assert "the llama.cpp engine exited with status 1 at its start-up decode" in done.stderr
    assert "RuntimeError: decoder exploded" in done.stderr


def test_the_build_reports_no_amx() -> None:
    # The Makefile builds with AMX off; llama.cpp's own report of this build must agree.
    features = llama_build_features().split()
    assert not [f for f in features if f.startswith("AMX")]
    assert "AVX2" in features or "AVX" in features or not features


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_once_serving(inference_server: InferenceServer, path: str) -> None:
    response = httpx.get(inference_server.base + path, timeout=10)
    assert response.status_code == 200
    if path == "/readyz":
        assert response.json()["status"] == "ready"
        assert response.json()["model"] == "smollm2-135m-instruct"


def _readyz_follows_the_engine() -> None:
    # In a child process (run_in_child): it runs llama.cpp in this interpreter.
    from fastapi.testclient import TestClient

    from inference.engines.llama.engine import LlamaEngine
    from inference.server.app import create_inference_app

    engine = LlamaEngine(slots=1, context_per_slot=512)
    with TestClient(create_inference_app(engine)) as client:
        assert client.get("/readyz").status_code == 200
        engine.close()
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["error"]["message"] == "the inference engine has stopped"
        assert client.get("/healthz").status_code == 200


def test_readyz_is_503_once_the_engine_stops() -> None:
    run_in_child(_readyz_follows_the_engine)
