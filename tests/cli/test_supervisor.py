"""The supervisor of `agentmill up` on real child processes: restarts with backoff, crash loops,
hung children, and start-up failures that are not retried."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import multiprocess

from cli.errors import CrashLoop, StartupFailed
from cli.supervisor import (
    Child,
    ChildSpec,
    RestartPolicy,
    Supervisor,
    describe_exit,
    spawn,
    stop_all,
    wait_ready,
)
from core.web.threaded import free_port

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAST = RestartPolicy(backoff_s=0.1, max_backoff_s=0.4, max_restarts=3, window_s=60, unready_s=0.5)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    stop_all(started, timeout_s=5)


def _until(condition: object, supervisor: Supervisor, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        supervisor.tick()
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_a_killed_child_is_restarted_with_growing_backoff(children: list[Child]) -> None:
    child = spawn(ChildSpec("sleeper", SLEEPER, dict(os.environ)))
    children.append(child)
    supervisor = Supervisor(children, FAST)
    waits = []
    for _ in range(2):
        assert child.process is not None
        first = child.process.pid
        os.kill(first, signal.SIGSEGV)
        child.process.wait()
        supervisor.tick()
        assert child.restart_at is not None
        waits.append(child.backoff_s)
        _until(lambda: child.process is not None and child.process.pid != first, supervisor)  # noqa: B023
        assert child.exit_code is None
    assert waits == [0.1, 0.2]
    assert supervisor.restarts == 2


def test_a_dead_childs_live_metrics_are_dropped(children: list[Child], tmp_path: Path) -> None:
    gauge = (
        "from prometheus_client import Gauge; import time; "
        "Gauge('open', 'Open now.', multiprocess_mode='livesum').set(1); time.sleep(120)"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    child = spawn(ChildSpec("api", [sys.executable, "-c", gauge], env))
    children.append(child)
    assert child.process is not None
    pid = child.process.pid
    written = tmp_path / f"gauge_livesum_{pid}.db"
    deadline = time.monotonic() + 30
    while not written.exists():
        assert time.monotonic() < deadline, "the child wrote no metrics"
        time.sleep(0.05)
    ended: list[int] = []

    def on_exit(pid: int) -> None:
        ended.append(pid)
        multiprocess.mark_process_dead(pid, str(tmp_path))  # type: ignore[no-untyped-call]

    supervisor = Supervisor(children, FAST, on_exit=on_exit)
    child.process.kill()
    child.process.wait()
    supervisor.tick()
    assert ended == [pid]
    assert not written.exists()


def test_a_crash_loop_gives_up_with_the_reason(children: list[Child]) -> None:
    crasher = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    children.append(spawn(ChildSpec("inference", crasher, dict(os.environ))))
    supervisor = Supervisor(children, FAST)
    with pytest.raises(CrashLoop) as caught:
        _until(lambda: False, supervisor)
    assert "inference exited with signal SIGSEGV" in str(caught.value)
    assert "died 3 times" in str(caught.value)
    assert supervisor.restarts == 2


def test_a_hung_child_is_killed_and_restarted(children: list[Child]) -> None:
    port = free_port()  # nothing listens there: the liveness probe fails
    spec = ChildSpec("api", SLEEPER, dict(os.environ), live_url=f"http://127.0.0.1:{port}/")
    child = spawn(spec)
    child.ready = True  # as after start-up
    children.append(child)
    assert child.process is not None
    first = child.process.pid
    supervisor = Supervisor(children, FAST)
    _until(lambda: child.process is not None and child.process.pid != first, supervisor)
    assert supervisor.restarts == 1


def test_a_child_that_fails_at_start_up_is_not_restarted(children: list[Child]) -> None:
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    spec = ChildSpec("inference", failing, dict(os.environ), ready_url="http://127.0.0.1:1/")
    child = spawn(spec)
    children.append(child)
    with pytest.raises(StartupFailed, match="inference exited with status 3 at start-up"):
        wait_ready(child, 10, lambda: False)


def test_exit_codes_read_as_words() -> None:
    assert describe_exit(1) == "status 1"
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
