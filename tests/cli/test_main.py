"""`agentmill` as a user runs it: `up` as a subprocess, keys from a second shell, SIGTERM."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.cli.up_process import (
    KEY_RE,
    Up,
    agentmill,
    free_port,
    postgres_of,
    up_env,
)


def _me(port: int, key: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_up_serves_prints_a_working_key_and_stops_clean(home: Path) -> None:
    up = Up(home, free_port())
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
        second = agentmill(home, "up", "--port", str(free_port()))
        assert second.returncode == 1
        assert "in use by process" in second.stderr

        # Keys made from another shell while `up` runs work at once against the running API.
        created = agentmill(home, "keys", "create", "--tenant", "acme", "--name", "ci")
        assert created.returncode == 0, created.stderr
        acme_key = created.stdout.strip()
        assert KEY_RE.fullmatch(acme_key)
        assert _me(up.port, acme_key).json()["tenant_name"] == "acme"
        listed = agentmill(home, "keys", "list", "--tenant", "acme")
        assert acme_key.split("_")[1] in listed.stdout
        assert acme_key not in listed.stdout
        revoked = agentmill(home, "keys", "revoke", acme_key.split("_")[1])
        assert revoked.returncode == 0, revoked.stderr
        assert _me(up.port, acme_key).status_code == 401

        # The API's /metrics shows the host: its own requests and the worker's sweeps, from
        # the metrics directory `up` gave both.
        deadline = time.monotonic() + 40
        while True:
            text = httpx.get(f"http://127.0.0.1:{up.port}/metrics", timeout=10).text
            if 'agentmill_sweeper_requeued_total{reason="lost"}' in text:
                break
            assert time.monotonic() < deadline, "the worker's metrics never reached the API's"
            time.sleep(0.5)
        assert 'route="/v1/me",status="401"' in text
        assert list((home / "metrics").glob("counter_*.db"))

        children = up.descendants()
        assert len(children) >= 2  # the inference server and the API
    finally:
        code = up.terminate()
    assert code == 0, up.output
    time.sleep(0.5)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    assert postgres_of(home) == []

    # Data survived; the key is not printed again; and `keys create` works with nothing running.
    offline = agentmill(home, "keys", "create", "--tenant", "later")
    assert offline.returncode == 0, offline.stderr
    later_key = offline.stdout.strip()
    assert postgres_of(home) == []
    up = Up(home, free_port())
    try:
        up.wait_up()
        assert KEY_RE.search(up.output) is None
        assert _me(up.port, key).status_code == 200
        assert _me(up.port, later_key).json()["tenant_name"] == "later"
    finally:
        assert up.terminate() == 0
    assert postgres_of(home) == []


def test_up_refuses_a_port_in_use(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = agentmill(home, "up", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "in use" in result.stderr
    assert postgres_of(home) == []


def test_bad_configuration_exits_2_with_the_variable(home: Path, tmp_path: Path) -> None:
    env = up_env(home) | {"AGENTMILL_DATABASE_URL": "mysql://x"}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
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
    result = agentmill(home, "api", "--port", str(free_port()))
    assert result.returncode == 1
    assert "AGENTMILL_DATABASE_URL" in result.stderr


def test_migrate_and_keys_against_database_url(database_url: str, home: Path) -> None:
    env = up_env(home) | {"AGENTMILL_DATABASE_URL": database_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
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


def test_up_moves_off_a_taken_default_inference_port(home: Path) -> None:
    with socket.socket() as busy:
        try:  # 8001 is the default; hold it (or find it held already)
            busy.bind(("127.0.0.1", 8001))
            busy.listen()
        except OSError:
            pass
        up = Up(home, free_port(), {"AGENTMILL_INFERENCE_PORT": ""})
        try:
            up.wait_up(60)
            line = next(line for line in up.lines if "agentmill is up" in line)
            assert "inference: http://127.0.0.1:8001/" not in line
            assert "port 8001 is taken; the inference server uses" in up.output
        finally:
            assert up.terminate() == 0


def test_up_refuses_an_explicit_inference_port_in_use(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = up_env(home, {"AGENTMILL_INFERENCE_PORT": str(port)})
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "up", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert postgres_of(home) == []
