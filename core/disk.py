"""How much room the database has left, for /readyz and for refusing new work on a full disk.

Two measures, each checked when it can be: the free space of the filesystem holding the
server's data directory (the embedded server's `home/pg`, or any server on this machine: a
Unix-socket or loopback connection whose `data_directory` exists here) against
`disk_min_free_mb`, and the database's own size (`pg_database_size`) against
`disk_max_database_mb`, for a remote server whose disk this machine cannot see. A report is
cached briefly, so checking it on every new run costs a clock read.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from core.config import Settings

log = logging.getLogger(__name__)

CACHE_S = 2.0
"""How long one measurement stands (a disk does not fill in two seconds that matter)."""
MB = 1024 * 1024

# data_directory is readable to superusers and members of pg_read_all_settings only.
_WHERE = text(
    "SELECT host(inet_server_addr()) AS addr, CASE WHEN pg_has_role(current_user, "
    "'pg_read_all_settings', 'USAGE') THEN current_setting('data_directory') END AS data_dir"
)
_SIZE = text("SELECT pg_database_size(current_database())")


@dataclass(frozen=True)
class DiskSpace:
    """One measurement of the database's room."""

    free_mb: float | None
    """Free MiB on the data directory's filesystem; None: not visible from here."""
    database_mb: float | None
    """The database's size in MiB; None: not measured (no limit set, or it failed)."""
    min_free_mb: int
    """The free-space threshold (0: no check)."""
    max_database_mb: int | None
    """The size limit (None: none)."""

    @property
    def problem(self) -> str | None:
        """Why new work is refused, for people; None while there is room."""
        if self.min_free_mb and self.free_mb is not None and self.free_mb < self.min_free_mb:
            return (
                f"the database disk is almost full: {self.free_mb:.0f} MiB free, below the "
                f"{self.min_free_mb} MiB this server keeps (AGENTMILL_DISK_MIN_FREE_MB); "
                "new runs are refused until space is freed"
            )
        limit = self.max_database_mb
        if limit is not None and self.database_mb is not None and self.database_mb >= limit:
            return (
                f"the database has reached its size limit: {self.database_mb:.0f} MiB of "
                f"{limit} MiB (AGENTMILL_DISK_MAX_DATABASE_MB); new runs are refused until "
                "space is freed"
            )
        return None

    @property
    def ok(self) -> bool:
        """Whether new work may be accepted."""
        return self.problem is None

    def as_json(self) -> dict[str, Any]:
        """The /readyz form (figures only: no paths)."""
        body: dict[str, Any] = {"status": "ok" if self.ok else "low"}
        if self.free_mb is not None:
            body.update(free_mb=round(self.free_mb), min_free_mb=self.min_free_mb)
        if self.database_mb is not None:
            body.update(database_mb=round(self.database_mb), max_database_mb=self.max_database_mb)
        if self.free_mb is None and self.database_mb is None:
            body["checked"] = False  # a remote server and no size limit: nothing to measure
        return body


def free_mb(path: Path) -> float:
    """Free MiB (for unprivileged users) on the filesystem that holds, or will hold, `path`
    (its nearest existing ancestor: an embedded server not yet created goes there)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / MB


def _local(addr: str | None) -> bool:
    if addr is None:  # a Unix socket
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


class DiskMonitor:
    """Measures the database's room (at most once per `cache_s`); never raises."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        cache_s: float = CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, DiskSpace] | None = None
        self._data_dir: Path | None = None
        self._located = False

    def check(self) -> DiskSpace:
        """The current measurement."""
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._cache_s:
                return self._cached[1]
            space = self._measure()
            self._cached = (now, space)
            return space

    def _measure(self) -> DiskSpace:
        settings = self._settings
        free = None
        if settings.disk_min_free_mb:
            directory = self._directory()
            if directory is not None:
                try:
                    free = free_mb(directory)
                except OSError:
                    log.warning("free space of the database directory unreadable", exc_info=True)
        size = None
        if settings.disk_max_database_mb is not None:
            try:
                with self._engine.connect() as conn:
                    size = int(conn.execute(_SIZE).scalar_one()) / MB
            except Exception:
                log.warning("database size not measured", exc_info=True)
        return DiskSpace(free, size, settings.disk_min_free_mb, settings.disk_max_database_mb)

    def _directory(self) -> Path | None:
        """The data directory if this machine sees it (looked up once, then remembered)."""
        if self._located:
            return self._data_dir
        if self._settings.database_url is None:  # the embedded server of this home
            self._data_dir, self._located = self._settings.pg_dir, True
            return self._data_dir
        try:
            with self._engine.connect() as conn:
                row = conn.execute(_WHERE).one()
        except Exception:
            return None  # the database is down: try again next time
        found = Path(row.data_dir) if row.data_dir else None
        if found is not None and _local(row.addr) and found.is_dir():
            self._data_dir = found
        self._located = True
        return self._data_dir
