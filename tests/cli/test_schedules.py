"""`agentmill schedules create|list|show|pause|resume|runs|delete` against the real API."""

from __future__ import annotations

from pathlib import Path

import agentmill
import pytest

from cli import main as cli
from cli import schedules as cli_schedules
from core.errors import UserError


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`main` in this process: no key file, logging left alone."""
    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)


def test_a_schedule_is_named_by_its_id() -> None:
    with pytest.raises(UserError, match="not a schedule id"):
        cli_schedules.schedule_id("daily")


@pytest.mark.usefixtures("quiet")
def test_create_list_show_pause_resume_runs_and_delete(
    api_url: str, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ["--base-url", api_url, "--api-key", api_key]
    with agentmill.Client(api_key, base_url=api_url) as am:
        am.agents.create("reporter")
    daily = ["schedules", "create", "--agent", "reporter", "--input", "Write the report."]
    daily += ["--cron", "0 9 * * 1-5", "--timezone", "Europe/Paris", "--user", "ann"]
    assert cli.main([*daily, *server]) == 0
    made = capsys.readouterr().out
    schedule_id = made.split()[0]
    assert made.startswith(f"{schedule_id}  cron '0 9 * * 1-5' Europe/Paris  next ")
    assert made.endswith("  0 fires\n")
    hourly = ["schedules", "create", "--agent", "reporter", "--input", "ping"]
    assert cli.main([*hourly, "--interval", "3600", "--paused", *server]) == 0
    paused_id = capsys.readouterr().out.split()[0]

    assert cli.main(["schedules", "list", *server]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in listed] == [schedule_id, paused_id]
    assert listed[1].endswith("  every 3600s  paused  0 fires")
    assert cli.main(["schedules", "list", "--agent", "reporter", *server]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2

    assert cli.main(["schedules", "show", schedule_id, *server]) == 0
    shown = capsys.readouterr().out
    assert "  input: Write the report.\n  user: ann\n" in shown
    assert "  session: new; missed fires: run_once\n" in shown

    assert cli.main(["schedules", "pause", schedule_id, *server]) == 0
    assert "  paused  " in capsys.readouterr().out
    assert cli.main(["schedules", "resume", schedule_id, *server]) == 0
    assert "  next " in capsys.readouterr().out
    assert cli.main(["schedules", "runs", schedule_id, *server]) == 0
    assert capsys.readouterr().out == ""

    assert cli.main(["schedules", "delete", paused_id, *server]) == 0
    assert capsys.readouterr().out == f"deleted {paused_id}\n"
    assert cli.main(["schedules", "show", paused_id, *server]) == 1
    assert "not found (404 not_found)" in capsys.readouterr().err


@pytest.mark.usefixtures("quiet")
def test_create_refusals(api_url: str, api_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    server = ["--base-url", api_url, "--api-key", api_key]
    with agentmill.Client(api_key, base_url=api_url) as am:
        am.agents.create("reporter")
    create = ["schedules", "create", "--agent", "reporter", "--input", "hi", *server]
    assert cli.main(create) == 1
    assert "--cron EXPRESSION or --interval SECONDS" in capsys.readouterr().err
    assert cli.main([*create, "--cron", "61 * * * *"]) == 1
    assert "(422 validation_error)" in capsys.readouterr().err
    assert cli.main([*create[:3], "nobody", *create[4:], "--interval", "60"]) == 1
    assert "unknown agent 'nobody'" in capsys.readouterr().err
    assert cli.main(["schedules", "pause", "daily", *server]) == 1
    assert "'daily' is not a schedule id" in capsys.readouterr().err
