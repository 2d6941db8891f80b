"""The disk monitor measures the real server's data directory and database size, names what is
short, and caches its measurement briefly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from core import disk
from core.config import Settings
from core.disk import MB, DiskMonitor, DiskSpace


def data_directory(engine: Engine) -> Path:
    with engine.connect() as conn:
        return Path(conn.execute(text("SHOW data_directory")).scalar_one())


def test_a_server_on_this_machine_is_measured_on_its_data_directory(
    settings: Settings, engine: Engine
) -> None:
    space = DiskMonitor(engine, settings).check()
    expected = shutil.disk_usage(data_directory(engine)).free / MB
    assert space.free_mb is not None
    assert abs(space.free_mb - expected) < 256  # other tests write meanwhile
    assert space.ok
    assert space.as_json()["status"] == "ok"
    assert space.as_json()["min_free_mb"] == 512


def test_free_space_below_the_threshold_is_a_problem(settings: Settings, engine: Engine) -> None:
    huge = settings.model_copy(update={"disk_min_free_mb": 10**9})
    space = DiskMonitor(engine, huge).check()
    assert not space.ok
    assert space.problem is not None
    assert "AGENTMILL_DISK_MIN_FREE_MB" in space.problem
    assert "MiB free" in space.problem
    assert space.as_json()["status"] == "low"
    assert str(data_directory(engine)) not in str(space.as_json())  # no paths in /readyz


def test_a_database_over_its_size_limit_is_a_problem(settings: Settings, engine: Engine) -> None:
    limited = settings.model_copy(update={"disk_max_database_mb": 1, "disk_min_free_mb": 0})
    space = DiskMonitor(engine, limited).check()
    assert space.free_mb is None  # the free-space check is off
    assert space.database_mb is not None
    assert space.database_mb > 1
    assert "AGENTMILL_DISK_MAX_DATABASE_MB" in (space.problem or "")
    roomy = limited.model_copy(update={"disk_max_database_mb": 10**6})
    assert DiskMonitor(engine, roomy).check().ok


def test_nothing_to_measure_is_no_problem(settings: Settings, engine: Engine) -> None:
    off = settings.model_copy(update={"disk_min_free_mb": 0})
    space = DiskMonitor(engine, off).check()
    assert space == DiskSpace(None, None, 0, None)
    assert space.ok
    assert space.as_json() == {"status": "ok", "checked": False}


def test_the_embedded_server_is_measured_where_its_home_is(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    embedded = settings.model_copy(update={"database_url": None, "home": tmp_path / "new"})
    space = DiskMonitor(engine, embedded).check()  # home/pg does not exist yet: its parent
    assert space.free_mb is not None
    assert abs(space.free_mb - shutil.disk_usage(tmp_path).free / MB) < 256


def test_a_measurement_is_cached_briefly(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_free(path: Path) -> float:
        calls.append(path)
        return 100.0

    monkeypatch.setattr(disk, "free_mb", fake_free)
    now = [0.0]
    monitor = DiskMonitor(engine, settings, cache_s=2.0, clock=lambda: now[0])
    assert monitor.check().free_mb == 100.0
    now[0] = 1.5
    monitor.check()
    assert len(calls) == 1
    now[0] = 2.5
    assert not monitor.check().ok  # 100 MiB < 512
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("addr", "local"),
    [(None, True), ("127.0.0.1", True), ("::1", True), ("10.1.2.3", False), ("db", False)],
)
def test_only_a_socket_or_loopback_server_is_on_this_machine(addr: str | None, local: bool) -> None:
    assert disk._local(addr) is local
