"""The embedded server: start, migrate, persist, single owner, clean stop, orphan adoption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from core import migrate
from core.db import create_db_engine, transaction
from core.embedded_pg import (
    CONFIG_NAME,
    EmbeddedPostgres,
    HomeLock,
    embedded_database,
    running_url,
    server_settings,
)
from core.errors import HomeInUse
from core.tenants import ensure_tenant


def _postgres_processes(pg_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pg_dir) in cmdline:
            found.append(proc)
    return found


def test_starts_migrates_keeps_data_and_stops_clean(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with EmbeddedPostgres(home) as pg:
        assert pg.url is not None
        engine = create_db_engine(pg.url)
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        with engine.connect() as conn:
            version = conn.scalar(
                text("SELECT extversion FROM pg_extension WHERE extname='vector'")
            )
        assert version is not None
        assert version.startswith("0.8")
        with transaction(engine) as session:
            ensure_tenant(session, "kept")
        engine.dispose()
    assert _postgres_processes(home / "pg") == []
    assert running_url(home / "pg") is None

    with EmbeddedPostgres(home) as pg:
        assert pg.url is not None
        engine = create_db_engine(pg.url)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with transaction(engine) as session:
            _, created = ensure_tenant(session, "kept")
        engine.dispose()
        assert created is False
    assert _postgres_processes(home / "pg") == []


def test_second_owner_is_refused_and_can_attach(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with EmbeddedPostgres(home) as first:
        second = EmbeddedPostgres(home)
        with pytest.raises(HomeInUse, match=str(os.getpid())):
            second.start()
        # The refused owner left the running server alone.
        assert running_url(home / "pg") == first.url
        with embedded_database(home) as (url, owned):
            assert url == first.url
            assert owned is False
    assert _postgres_processes(home / "pg") == []


def test_stale_lock_file_does_not_block(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "owner.lock").write_text("999999")  # left by a dead process; not locked
    lock = HomeLock(home)
    lock.acquire()
    assert lock.held
    lock.release()
    assert not lock.held


def test_adopts_and_stops_server_of_a_killed_owner(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from core.embedded_pg import EmbeddedPostgres
        EmbeddedPostgres(Path({str(home)!r})).start()
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    # The owner died without stopping its server: it is still running, and nobody owns it.
    orphans = _postgres_processes(home / "pg")
    assert orphans
    with EmbeddedPostgres(home) as pg:
        assert pg.url is not None
        engine = create_db_engine(pg.url)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
        engine.dispose()
    assert _postgres_processes(home / "pg") == []


def test_memory_settings_scale_with_the_machine_within_bounds() -> None:
    gib = 1024**3
    small, laptop, server = (
        server_settings(gib),
        server_settings(16 * gib),
        server_settings(256 * gib),
    )
    assert small["shared_buffers"] == "256MB"  # a quarter, but never below the 128MB default
    assert server_settings(256 * 1024 * 1024)["shared_buffers"] == "128MB"
    assert laptop["shared_buffers"] == "2048MB"
    assert server["shared_buffers"] == "2048MB"  # capped: the OS cache holds the rest
    assert laptop["effective_cache_size"] == "8192MB"
    assert laptop["maintenance_work_mem"] == "1024MB"
    assert small["maintenance_work_mem"] == "64MB"
    assert laptop["random_page_cost"] == "1.1"


def test_the_server_starts_with_agentmill_settings_every_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    wanted = {"shared_buffers": "160MB", "work_mem": "12MB", "random_page_cost": "1.1"}

    def shown(url: str) -> dict[str, str]:
        engine = create_db_engine(url)
        with engine.connect() as conn:
            values = {name: str(conn.scalar(text(f"SHOW {name}"))) for name in wanted}
        engine.dispose()
        return values

    with EmbeddedPostgres(home, settings=wanted) as pg:
        assert pg.url is not None
        assert shown(pg.url) == wanted
    # A later start rewrites the file (new settings apply) and includes it only once.
    changed = {**wanted, "work_mem": "20MB"}
    with EmbeddedPostgres(home, settings=changed) as pg:
        assert pg.url is not None
        assert shown(pg.url) == changed
    main = (home / "pg" / "postgresql.conf").read_text()
    assert main.count(f"include_if_exists = '{CONFIG_NAME}'") == 1
    assert "work_mem = '20MB'" in (home / "pg" / CONFIG_NAME).read_text()
