"""`agentmill batch`: submit's branches on a scripted server, the commands against the real
API (no worker: items stay queued until cancelled), and a submit run by a real worker."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import agentmill
import pytest

from cli import batch as cli_batch
from cli import main as cli
from core.errors import UserError
from tests.sdk.fakes import (
    AGENT_ID,
    BATCH_ID,
    Server,
    agent_body,
    answer,
    batch_body,
    client,
    error_body,
    jsonl_stream,
    result_line,
)

ROOT = Path(__file__).resolve().parents[2]
ITEMS = b'{"input": "Say hello."}\n{"input": "Say goodbye.", "user_id": "ann"}\n'
AGENTS = answer(200, {"data": [agent_body("helper", id=str(AGENT_ID))], "next_cursor": None})


class Terminal(io.StringIO):
    """An output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def batch(status: str = "running", done: int = 0) -> agentmill.Batch:
    return agentmill.Batch.model_validate(batch_body(status, done=done))


def submit_args(path: Path, **changes: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "file": path,
        "agent": "helper",
        "concurrency": 2,
        "output": None,
        "no_wait": False,
    }
    return argparse.Namespace(**{**values, **changes})


def test_the_bar_shows_finished_items_and_what_else_is_going_on() -> None:
    assert cli_batch.render(batch(done=1), 3.4, width=10) == "[#####-----] 1/2 done, 1 running  3s"
    body = batch_body("completed", done=1)
    body["counts"] |= {"failed": 1, "cancelled": 0}
    failed = agentmill.Batch.model_validate(body)
    assert cli_batch.render(failed, 0, width=4).startswith("[####] 2/2 done, 1 failed")


def test_the_bar_redraws_one_line_on_a_terminal_and_writes_lines_elsewhere() -> None:
    tty, log = Terminal(), io.StringIO()
    for out in (tty, log):
        times = iter([0.0, 1.0, 2.0, 3.0])
        bar = cli_batch.ProgressBar(out, clock=times.__next__)
        bar.update(batch(done=0))
        bar.update(batch(done=0))  # the time moved on, nothing else
        bar.update(batch("completed", done=2))
        bar.finish()
    assert tty.getvalue().count("\r") == 3
    assert tty.getvalue().endswith("2/2 done  3s\x1b[K\n")
    assert log.getvalue().splitlines() == [
        "[------------------------] 0/2 done, 2 running  1s",
        "[########################] 2/2 done  3s",
    ]


def test_submit_uploads_follows_the_batch_and_writes_the_results(tmp_path: Path) -> None:
    path, output = tmp_path / "items.jsonl", tmp_path / "results.jsonl"
    path.write_bytes(ITEMS)
    server = Server(
        [
            AGENTS,
            answer(201, batch_body()),
            answer(200, batch_body(done=1)),
            answer(200, batch_body("completed", done=2)),
            lambda _r: jsonl_stream(result_line(0, "Hello!") + result_line(1, "Bye!")),
        ]
    )
    out, err = io.StringIO(), io.StringIO()
    args = submit_args(path, output=output)
    assert cli_batch.submit(client(server), args, out, err) == 0
    upload = server.requests[1]
    assert upload.content == ITEMS
    assert dict(upload.url.params) == {"agent_id": str(AGENT_ID), "concurrency": "2"}
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["position"], r["output"]) for r in lines] == [(0, "Hello!"), (1, "Bye!")]
    assert out.getvalue() == ""
    assert err.getvalue().splitlines()[0] == f"batch {BATCH_ID}: 2 items on helper"
    assert "1/2 done" in err.getvalue()
    assert f"batch {BATCH_ID} completed: 2 succeeded, 0 failed, 0 cancelled of 2" in err.getvalue()
    assert err.getvalue().endswith(f"2 results written to {output}\n")


def test_submit_without_waiting_prints_the_id(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(ITEMS)
    server = Server([AGENTS, answer(201, batch_body())])
    out = io.StringIO()
    assert (
        cli_batch.submit(client(server), submit_args(path, no_wait=True), out, io.StringIO()) == 0
    )
    assert out.getvalue() == f"{BATCH_ID}\n"
    assert len(server.requests) == 2


def test_submit_names_the_bad_line_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"input": "a"}\nnope\n')
    refused = error_body("validation_error", "line 2: not valid JSON (Expecting value)", "line 2")
    server = Server([AGENTS, answer(422, refused)])
    with pytest.raises(UserError) as raised:
        cli_batch.submit(client(server), submit_args(path), io.StringIO(), io.StringIO())
    assert str(raised.value) == f"{path}: line 2: not valid JSON (Expecting value)"
    with pytest.raises(UserError, match=r"cannot read .*missing\.jsonl: No such file"):
        cli_batch.submit(
            client(server), submit_args(tmp_path / "missing.jsonl"), io.StringIO(), io.StringIO()
        )


def test_status_lists_the_counts_and_usage() -> None:
    text = cli_batch.status_text(batch(done=1))
    assert text.splitlines() == [
        f"batch {BATCH_ID} running: 1 succeeded, 0 failed, 0 cancelled of 2",
        "  items: 0 pending, 0 queued, 1 running, 1 finished",
        "  usage: 3 prompt + 2 completion tokens, $0.0000",
        f"  agent {AGENT_ID}, concurrency 4, created 2025-01-01 00:00:00",
    ]


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`main` in this process: no key file, logging left alone."""
    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)


@pytest.mark.usefixtures("quiet")
def test_status_cancel_and_results_against_the_api(
    api_url: str, api_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with agentmill.Client(api_key, base_url=api_url) as am:
        agent = am.agents.create("helper")
        queued = am.batches.create(agent.id, ["one", "two", "three"], concurrency=1)
    server = ["--base-url", api_url, "--api-key", api_key]

    assert cli.main(["batch", "status", str(queued.id), *server]) == 0
    assert f"batch {queued.id} running: 0 succeeded" in capsys.readouterr().out
    assert cli.main(["batch", "cancel", str(queued.id), *server]) == 0
    assert capsys.readouterr().out == (
        f"batch {queued.id} cancelled: 0 succeeded, 0 failed, 3 cancelled of 3\n"
    )
    output = tmp_path / "results.jsonl"
    assert cli.main(["batch", "results", str(queued.id), "--output", str(output), *server]) == 0
    assert capsys.readouterr().err == f"3 results written to {output}\n"
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["position"], r["input"], r["status"]) for r in lines] == [
        (0, "one", "cancelled"),
        (1, "two", "cancelled"),
        (2, "three", "cancelled"),
    ]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "fine"}\n{"input": ""}\n')
    assert cli.main(["batch", "submit", str(bad), "--agent", "helper", *server]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"agentmill: error: {bad}: line 2.input: ")
    assert err.count("\n") == 1
    assert cli.main(["batch", "status", str(agent.id), *server]) == 1
    assert "not found (404 not_found)" in capsys.readouterr().err
    never = tmp_path / "never.jsonl"
    assert cli.main(["batch", "results", str(agent.id), "--output", str(never), *server]) == 1
    assert "not found (404 not_found)" in capsys.readouterr().err
    assert not never.exists()


@pytest.mark.timeout(400)
def test_submit_with_a_live_worker(live_url: str, api_key: str, tmp_path: Path) -> None:
    with agentmill.Client(api_key, base_url=live_url) as am:
        am.agents.create("batcher", instructions="Answer in one short sentence.", max_steps=2)
    items, output = tmp_path / "items.jsonl", tmp_path / "results.jsonl"
    items.write_bytes(ITEMS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMILL_")}
    env |= {"AGENTMILL_HOME": str(tmp_path / "home"), "AGENTMILL_API_KEY": api_key}
    env["AGENTMILL_BASE_URL"] = live_url
    command = ["batch", "submit", str(items), "--agent", "batcher", "--concurrency", "2"]
    submit = subprocess.run(
        [sys.executable, "-m", "cli.main", *command, "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert submit.returncode == 0, submit.stderr
    first, *_, summary, written = submit.stderr.splitlines()
    assert first.endswith(": 2 items on batcher")
    assert " completed: " in summary
    assert written == f"2 results written to {output}"
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["position"] for r in results] == [0, 1]
    assert results[1]["user_id"] == "ann"
    assert {r["status"] for r in results} <= {"succeeded", "failed"}
