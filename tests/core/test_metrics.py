"""Multiprocess metrics: two real processes write to one directory and a third renders them
once, summed (a live gauge too, until its process is marked dead), over HTTP as a worker
serves them; without the directory a process renders its own metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.config import Settings
from core.metrics import ENV_VAR, metrics_dir, prepare_metrics_dir, render_metrics

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
from agents.metrics import RUNS_FINISHED, TOOL_SECONDS
from api.metrics import OPEN_FOLLOWERS
RUNS_FINISHED.labels("succeeded").inc({runs})
TOOL_SECONDS.labels("add", "ok").observe(0.2)
OPEN_FOLLOWERS.inc({open})
print(__import__("os").getpid())
"""

READER = """
import sys, urllib.request
from core.metrics import mark_process_dead, render_metrics, serve_worker_metrics
if len(sys.argv) > 1:
    mark_process_dead(int(sys.argv[1]))
body, content_type = render_metrics()
port = serve_worker_metrics(0, "127.0.0.1")
with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as served:
    assert served.read() == body, "the worker port serves what render_metrics renders"
print(content_type)
sys.stdout.write(body.decode())
"""


def _python(code: str, directory: Path, *args: str) -> str:
    env = {**os.environ, ENV_VAR: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_processes_are_rendered_together(tmp_path: Path) -> None:
    first = int(_python(WRITER.format(runs=2, open=1), tmp_path))
    _python(WRITER.format(runs=3, open=2), tmp_path)
    content_type, _, text = _python(READER, tmp_path).partition("\n")
    assert content_type.startswith("text/plain")
    samples = _samples(text)
    assert samples[("agentmill_runs_finished_total", (("outcome", "succeeded"),))] == 5
    tool = (("outcome", "ok"), ("tool", "add"))
    assert samples[("agentmill_tool_call_seconds_count", tool)] == 2
    assert samples[("agentmill_tool_call_seconds_sum", tool)] == pytest.approx(0.4)
    assert samples[("agentmill_api_open_followers", ())] == 3

    # A supervisor marks a child dead when it exits: its live gauge goes, its counts stay.
    _, _, text = _python(READER, tmp_path, str(first)).partition("\n")
    samples = _samples(text)
    assert samples[("agentmill_api_open_followers", ())] == 2
    assert samples[("agentmill_runs_finished_total", (("outcome", "succeeded"),))] == 5


def test_without_the_directory_a_process_renders_its_own() -> None:
    from agents.metrics import LEASES_LOST

    assert not os.environ.get(ENV_VAR)
    before = _samples(render_metrics()[0].decode())[("agentmill_run_leases_lost_total", ())]
    LEASES_LOST.inc()
    after = _samples(render_metrics()[0].decode())[("agentmill_run_leases_lost_total", ())]
    assert after == before + 1


def test_prepare_sets_the_directory_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    settings = Settings(home=tmp_path / "home")
    assert metrics_dir(settings) == tmp_path / "home" / "metrics"
    assert prepare_metrics_dir(settings) == tmp_path / "home" / "metrics"
    assert (tmp_path / "home" / "metrics").is_dir()
    assert os.environ[ENV_VAR] == str(tmp_path / "home" / "metrics")
    # Already set (by a supervisor, or the operator): kept.
    other = Settings(home=tmp_path / "home", metrics_dir=tmp_path / "elsewhere")
    assert prepare_metrics_dir(other) == tmp_path / "home" / "metrics"
    monkeypatch.delenv(ENV_VAR)
    assert prepare_metrics_dir(other) == tmp_path / "elsewhere"


def test_files_a_dead_process_of_this_pid_left_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    other = tmp_path / f"counter_{os.getpid() + 1}.db"
    mine.write_bytes(b"stale")
    other.write_bytes(b"another process")
    prepare_metrics_dir(Settings(home=tmp_path / "home"))
    assert not mine.exists()
    assert other.exists()
