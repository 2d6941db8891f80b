"""`agentmill up` as a user runs it, in a subprocess, with its output collected."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.services import ROOT

KEY_RE = re.compile(r"am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def up_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMILL_")}
    env.pop("DATABASE_URL", None)
    env["AGENTMILL_HOME"] = str(home)
    env["AGENTMILL_INFERENCE_PORT"] = str(free_port())
    env.update(extra or {})
    return env


def agentmill(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=up_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Up:
    """A running `agentmill up` whose output is collected in the background."""

    def __init__(self, home: Path, port: int, extra_env: dict[str, str] | None = None) -> None:
        self.port = port
        self.lines: list[str] = []
        env = {k: v for k, v in up_env(home, extra_env).items() if v}  # "" unsets a variable
        self.inference_port = int(env.get("AGENTMILL_INFERENCE_PORT", "8001"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float = 30) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if "agentmill is up" in self.output:
                return time.monotonic() - start
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"not up after {timeout}s:\n{self.output}")

    def descendants(self) -> list[psutil.Process]:
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def postgres_of(home: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(home / "pg") in (p.info["cmdline"] or [])
    ]


LEASE_S = "4"
RUN_DONE_TIMEOUT_S = 240.0


@dataclass
class Stack:
    """A running `agentmill up` and a client of its API."""

    up: Up
    http: httpx.Client
    record: Path

    def child(self, name: str) -> psutil.Process:
        """The live child process of `up` that runs `agentmill NAME`."""
        for proc in psutil.Process(self.up.process.pid).children():
            cmdline = proc.cmdline()
            if proc.is_running() and "cli.main" in cmdline and name in cmdline:
                return proc
        raise AssertionError(f"no {name} child:\n{self.up.output[-3000:]}")

    def postmaster(self, home: Path) -> psutil.Process:
        """The embedded server's postmaster (the postgres process whose parent is not one)."""
        for proc in postgres_of(home):
            if proc.parent() is None or proc.parent().name() != "postgres":
                return proc
        raise AssertionError("no postmaster")

    def agent(self, **spec: Any) -> str:
        """Create an agent; its id."""
        body = {"instructions": "You are a helpful assistant.", "memory": {"extract_facts": False}}
        response = self.http.post("/v1/agents", json={**body, **spec})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def start_run(self, agent_id: str, content: str) -> str:
        """Send a message (queued); the run's id."""
        session = self.http.post(f"/v1/agents/{agent_id}/sessions", json={"user_id": "ada"})
        assert session.status_code == 201, session.text
        response = self.http.post(
            f"/v1/sessions/{session.json()['id']}/messages", json={"content": content}
        )
        assert response.status_code in (200, 201, 202), response.text
        return str(response.json()["id"])

    def wait_for(self, run_id: str, event: str, timeout_s: float = 120) -> None:
        """Follow the run's event stream until it emits `event`."""
        seen: list[str] = []
        timeout = httpx.Timeout(10, read=timeout_s)
        with self.http.stream("GET", f"/v1/runs/{run_id}/events", timeout=timeout) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    seen.append(line[7:])
                    if seen[-1] == event:
                        return
        raise AssertionError(f"run {run_id} ended without {event}: {seen}")

    def finished(self, run_id: str, timeout_s: float = RUN_DONE_TIMEOUT_S) -> dict[str, Any]:
        """The run once it has ended (polling through any outage of the API's database)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                run: dict[str, Any] = self.http.get(f"/v1/runs/{run_id}").json()
            except (httpx.HTTPError, ValueError):
                run = {}
            if run.get("status") in ("succeeded", "failed", "cancelled", "incomplete"):
                return run
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} not finished:\n{self.up.output[-4000:]}")

    def tool_effects(self) -> dict[str, int]:
        """How many times each tool call's side effect completed."""
        done: dict[str, int] = {}
        if self.record.exists():
            for line in self.record.read_text().splitlines():
                kind, call, _pid = line.split()
                if kind == "done":
                    done[call] = done.get(call, 0) + 1
        return done


def start_stack(home: Path, tmp: Path, redis_url: str, **extra: str) -> Stack:
    """`agentmill up` on Redis with a short lease, the test tools and a record file."""
    record = tmp / "record.txt"
    env = {
        "AGENTMILL_BROKER_URL": redis_url,
        "AGENTMILL_RUN_LEASE_S": LEASE_S,
        "AGENTMILL_SWEEP_INTERVAL_S": "1",
        "AGENTMILL_TOOL_MODULES": '["tests.agents.e2e_tools"]',
        "AGENTMILL_TEST_RECORD": str(record),
        "AGENTMILL_TEST_TOOL_SECONDS": "6",  # past the lease
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    up = Up(home, free_port(), env)
    up.wait_up(120)
    key = KEY_RE.findall(up.output)[0]
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{up.port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    return Stack(up, http, record)
