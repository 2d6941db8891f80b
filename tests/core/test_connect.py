"""Which database a process that does not own one uses, and the one error when there is none."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import Settings
from core.connect import database_url
from core.embedded_pg import EmbeddedPostgres
from core.errors import DatabaseUnavailable


def test_the_configured_url_wins(tmp_path: Path) -> None:
    url = "postgresql+psycopg://u:p@db.example:5432/agentmill"
    assert database_url(Settings(home=tmp_path, database_url=url)) == url


@pytest.mark.parametrize("wait_s", [0.0, 0.5])
def test_no_database_names_both_ways_to_get_one(tmp_path: Path, wait_s: float) -> None:
    settings = Settings(home=tmp_path / "home")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="AGENTMILL_DATABASE_URL") as caught:
        database_url(settings, wait_s=wait_s)
    assert str(settings.pg_dir) in str(caught.value)
    assert "agentmill up" in str(caught.value)
    assert time.monotonic() - started >= wait_s  # it waited for a server that may be starting


def test_the_embedded_server_of_this_home_is_found(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pg = EmbeddedPostgres(home)
    url = pg.start()
    try:
        settings = Settings(home=home)
        assert database_url(settings) == url
        assert database_url(settings, wait_s=5) == url
    finally:
        pg.stop()
