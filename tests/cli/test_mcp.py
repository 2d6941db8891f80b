"""`agentmill mcp add|list|show|remove` against the real API."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main as cli
from cli import mcp as cli_mcp
from core.errors import UserError


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`main` in this process: no key file, logging left alone."""
    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)


def test_headers_are_read_as_name_value_pairs() -> None:
    assert cli_mcp.headers(["Authorization: Bearer x", "X-Key=1"]) == {
        "Authorization": "Bearer x",
        "X-Key": "1",
    }
    assert cli_mcp.headers([]) is None
    with pytest.raises(UserError, match="Name: value"):
        cli_mcp.headers(["nothing"])


@pytest.mark.usefixtures("quiet")
def test_add_list_show_and_remove(
    api_url: str, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ["--base-url", api_url, "--api-key", api_key]
    url = "https://mcp.example.com/mcp"
    added = ["mcp", "add", "github", "--url", url, "--header", "Authorization: Bearer s3cret"]
    assert cli.main([*added, *server]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"github  {url}  not listed yet")
    assert "s3cret" not in out

    assert cli.main(["mcp", "list", *server]) == 0
    assert capsys.readouterr().out.startswith("github  ")
    assert cli.main(["mcp", "show", "github", *server]) == 0
    shown = capsys.readouterr().out
    assert "headers: Authorization (values are never shown)" in shown
    assert "s3cret" not in shown

    assert cli.main(["mcp", "add", "local", "--url", "http://127.0.0.1:9/mcp", *server]) == 1
    assert "private or reserved" in capsys.readouterr().err
    assert cli.main(["mcp", "add", "neither", *server]) == 1
    assert "--url" in capsys.readouterr().err

    assert cli.main(["mcp", "remove", "github", *server]) == 0
    assert capsys.readouterr().out == "removed github\n"
    assert cli.main(["mcp", "show", "github", *server]) == 1
    assert "unknown MCP server 'github'" in capsys.readouterr().err
