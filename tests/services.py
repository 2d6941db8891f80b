"""Fixtures for end-to-end tests: the real inference server (bundled model), a real Redis
broker, and real Celery workers as child processes. In CI a missing Redis fails the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from core.web.threaded import free_port

REDIS_URL = os.environ.get("AGENTMILL_TEST_REDIS_URL", "redis://127.0.0.1:6379")
ROOT = Path(__file__).resolve().parent.parent


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s")


def _stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class InferenceServer:
    """`agentmill inference` (the real bundled model) as a child process, so a native crash
    fails the tests that used it, with its signal, instead of killing pytest."""

    def __init__(
        self, log_dir: Path, home: Path, *, port: int | None = None, **settings: str
    ) -> None:
        self.port = port or free_port()
        self.log = log_dir / f"inference-{self.port}.log"
        env = {**os.environ, "AGENTMILL_HOME": str(home)}
        env.update({f"AGENTMILL_{name.upper()}": value for name, value in settings.items()})
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "inference", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.base = f"http://127.0.0.1:{self.port}"
        """The server's root URL (…/v1 is the OpenAI base)."""
        try:
            _wait_http(self.base + "/readyz", self.process, 120)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.output()}") from None

    def output(self) -> str:
        """What the server logged."""
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        """Fail (with the signal that killed it) when the server process has died."""
        code = self.process.poll()
        if code is not None:
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
            pytest.fail(f"the inference server died with {how}:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM it (SIGKILL if it lingers)."""
        _stop(self.process)


@pytest.fixture(scope="session")
def inference_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceServer]:
    """The bundled model served by a child `agentmill inference` (4 slots of 2048 tokens)."""
    server = InferenceServer(
        tmp_path_factory.mktemp("inference"),
        tmp_path_factory.mktemp("inference-home"),
        inference_context="2048",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def inference_url(inference_server: InferenceServer) -> str:
    """Base URL (…/v1) of `agentmill inference` serving the bundled model."""
    return inference_server.base + "/v1"


MCP_TEST_SERVER = ("-m", "tests.agents.mcp_test_server")
"""Arguments for `python` that run the tests' MCP server (tests/agents/mcp_test_server.py)."""


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the MCP test server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the MCP test server is not listening after {timeout_s:.0f} s")


@pytest.fixture(scope="session")
def mcp_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tests' MCP server over streamable HTTP, a real child process; its endpoint URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("mcp-http") / "calls.log"
    env = {**os.environ, "MCP_TEST_LOG": str(log)}
    process = subprocess.Popen(
        [sys.executable, *MCP_TEST_SERVER, "http", str(port)], cwd=ROOT, env=env
    )
    _wait_port(port, process, 30)
    yield f"http://127.0.0.1:{port}/mcp"
    _stop(process)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own for this test (flushed before and after)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    number = 1 + uuid.uuid4().int % 15
    url = f"{REDIS_URL}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@dataclass
class Worker:
    """A worker child process and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-whatever, as in a crash."""
        _stop(self.process, kill=True)

    def output(self) -> str:
        """What it logged."""
        return self.log.read_text(errors="replace")


WorkerFactory = Callable[..., Worker]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[WorkerFactory]:
    """Starts `agentmill worker` children with the given environment; stops them after."""
    started: list[Worker] = []

    def start(env: dict[str, str], *, concurrency: int = 4, ready_timeout_s: float = 120) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        out = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        worker = Worker(process, log)
        started.append(worker)
        deadline = time.monotonic() + ready_timeout_s
        while " ready." not in worker.output():
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with {process.returncode}:\n{worker.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready:\n{worker.output()}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in started:
        _stop(worker.process)
