"""`agentmill` as a user runs it: `up` as a subprocess, keys from a second shell, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

KEY_RE = re.compile(r"am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMILL_")}
    env.pop("DATABASE_URL", None)
    env["AGENTMILL_HOME"] = str(home)
    env["AGENTMILL_INFERENCE_PORT"] = str(_free_port())
    return env


def _agentmill(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Up:
    """A running `agentmill up` whose output is collected in the background."""

    def __init__(self, home: Path, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        env = _env(home)
        self.inference_port = int(env["AGENTMILL_INFERENCE_PORT"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "up", "--port", str(port)],
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


def _postgres_of(home: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(home / "pg") in (p.info["cmdline"] or [])
    ]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    yield path
    for proc in _postgres_of(path):  # never leak a server, even when a test fails
        proc.kill()


def _me(port: int, key: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_up_serves_prints_a_working_key_and_stops_clean(home: Path) -> None:
    up = Up(home, _free_port())
    try:
        assert up.wait_up() < 30
        keys = KEY_RE.findall(up.output)
        assert len(keys) == 1
        key = keys[0]
        key_file = home / "api-key"
        assert key_file.read_text().strip() == key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert httpx.get(f"http://127.0.0.1:{up.port}/readyz", timeout=10).status_code == 200
        assert _me(up.port, key).json()["tenant_name"] == "default"
        assert _me(up.port, key[:-1] + "x").status_code == 401
        models = httpx.get(f"http://127.0.0.1:{up.inference_port}/v1/models", timeout=10).json()
        assert "smollm2-135m-instruct" in {m["id"] for m in models["data"]}

        # A second `up` on the same home refuses instead of touching the data.
        second = _agentmill(home, "up", "--port", str(_free_port()))
        assert second.returncode == 1
        assert "in use by process" in second.stderr

        # Keys made from another shell while `up` runs work at once against the running API.
        created = _agentmill(home, "keys", "create", "--tenant", "acme", "--name", "ci")
        assert created.returncode == 0, created.stderr
        acme_key = created.stdout.strip()
        assert KEY_RE.fullmatch(acme_key)
        assert _me(up.port, acme_key).json()["tenant_name"] == "acme"
        listed = _agentmill(home, "keys", "list", "--tenant", "acme")
        assert acme_key.split("_")[1] in listed.stdout
        assert acme_key not in listed.stdout
        revoked = _agentmill(home, "keys", "revoke", acme_key.split("_")[1])
        assert revoked.returncode == 0, revoked.stderr
        assert _me(up.port, acme_key).status_code == 401

        children = up.descendants()
        assert len(children) >= 2  # the inference server and the API
    finally:
        code = up.terminate()
    assert code == 0, up.output
    time.sleep(0.5)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    assert _postgres_of(home) == []

    # Data survived; the key is not printed again; and `keys create` works with nothing running.
    offline = _agentmill(home, "keys", "create", "--tenant", "later")
    assert offline.returncode == 0, offline.stderr
    later_key = offline.stdout.strip()
    assert _postgres_of(home) == []
    up = Up(home, _free_port())
    try:
        up.wait_up()
        assert KEY_RE.search(up.output) is None
        assert _me(up.port, key).status_code == 200
        assert _me(up.port, later_key).json()["tenant_name"] == "later"
    finally:
        assert up.terminate() == 0
    assert _postgres_of(home) == []


def test_up_refuses_a_port_in_use(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _agentmill(home, "up", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "in use" in result.stderr
    assert _postgres_of(home) == []


def test_bad_configuration_exits_2_with_the_variable(home: Path, tmp_path: Path) -> None:
    env = _env(home) | {"AGENTMILL_DATABASE_URL": "mysql://x"}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AGENTMILL_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_api_without_a_database_says_how_to_get_one(home: Path) -> None:
    result = _agentmill(home, "api", "--port", str(_free_port()))
    assert result.returncode == 1
    assert "AGENTMILL_DATABASE_URL" in result.stderr


def test_migrate_and_keys_against_database_url(database_url: str, home: Path) -> None:
    env = _env(home) | {"AGENTMILL_DATABASE_URL": database_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = run("keys", "create", "--tenant", "acme")
    assert refused.returncode == 1
    assert "agentmill migrate" in refused.stderr
    assert run("migrate").returncode == 0
    created = run("keys", "create", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    assert KEY_RE.fullmatch(created.stdout.strip())
    assert not home.exists()  # an external database never touches the embedded one
