"""What /readyz reports: each component the API depends on, checked and briefly cached; and
the guard that refuses new runs and batches while the database's disk is full.

The database and its disk decide the status code (without the one the API can do nothing,
without room on the other it must take no new work: 503); the broker, the inference server
and the workers are reported in the body, and any of them down makes the status "degraded"
(requests are still accepted: runs wait in the queue).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import redis
from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from agents.worker.heartbeat import live_workers
from api.deps import PrincipalDep
from core.config import Settings
from core.db import ping
from core.disk import DiskMonitor
from core.errors import DatabaseUnavailable

CACHE_S = 2.0
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Report:
    """One readiness check of every component."""

    database_ok: bool
    components: dict[str, dict[str, Any]]
    disk_problem: str | None = None
    """Why the database's disk takes no new work, or None while it has room."""

    @property
    def status(self) -> str:
        """ready, degraded (something but the database or its disk is down) or unavailable."""
        if not self.database_ok or self.disk_problem is not None:
            return "unavailable"
        ok = all(c["status"] == "ok" for c in self.components.values())
        return "ready" if ok else "degraded"


def _timed(check: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail: dict[str, Any] = {"status": "ok", **check()}
    except Exception as exc:
        detail = {"status": "down", "error": _describe(exc)}
    detail["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return detail


def _describe(exc: BaseException) -> str:
    # No hosts or URLs in a response anyone can read: the kind of failure only.
    if isinstance(exc, DatabaseUnavailable):
        return "the database does not answer"
    if isinstance(exc, redis.RedisError):
        return f"the Redis broker does not answer ({type(exc).__name__})"
    if isinstance(exc, urllib.error.HTTPError):
        return f"answered HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError | OSError):
        return "not reachable"
    return type(exc).__name__


class Readiness:
    """Checks the components of one API process (at most once per CACHE_S)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine
        self.disk = DiskMonitor(engine, settings)
        """The database's room, also checked before each new run (`require_disk_room`)."""
        self._lock = threading.Lock()
        self._cached: tuple[float, Report] | None = None

    def report(self) -> Report:
        """The current report (cached briefly: probes must not load what they watch)."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
                return self._cached[1]
            report = self._check()
            self._cached = (time.monotonic(), report)
            return report

    def _check(self) -> Report:
        database = _timed(self._database)
        components = {"database": database, "broker": self._broker(database)}
        components["inference"] = _timed(self._inference)
        components["workers"] = (
            self._workers()
            if database["status"] == "ok"
            else {
                "status": "unknown",
                "error": "the database does not answer",
            }
        )
        disk = self.disk.check()
        components["disk"] = disk.as_json()
        return Report(database["status"] == "ok", components, disk.problem)

    def _database(self) -> dict[str, Any]:
        ping(self._engine)
        return {}

    def _broker(self, database: dict[str, Any]) -> dict[str, Any]:
        url = self._settings.broker_url
        if url is None:
            return {"status": database["status"], "kind": "database"}

        def ping_redis() -> dict[str, Any]:
            client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_S)
            try:
                client.ping()
            finally:
                client.close()
            return {"kind": "redis"}

        return _timed(ping_redis)

    def _inference(self) -> dict[str, Any]:
        base = self._settings.local_inference_url
        own = self._settings.inference_url is None
        url = base.removesuffix("/v1") + "/readyz" if own else base + "/models"
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            if own or exc.code >= 500:
                raise
            # A provider that wants a key still answers: it is reachable.
        return {"kind": "bundled" if own else "external"}

    def _workers(self) -> dict[str, Any]:
        within = 3 * self._settings.worker_heartbeat_s
        try:
            beats = live_workers(self._engine, within)
        except Exception as exc:
            return {"status": "down", "error": _describe(exc)}
        if not beats:
            return {"status": "down", "count": 0, "error": f"no worker beat in {within:.0f}s"}
        return {
            "status": "ok",
            "count": len(beats),
            "concurrency": sum(b.concurrency for b in beats),
            "last_beat_s": round(min(b.age_s for b in beats), 1),
        }


INSUFFICIENT_STORAGE = 507


def require_disk_room(request: Request, principal: PrincipalDep) -> None:
    """Route dependency of what creates runs: 507 with the envelope, before anything is
    written, while the database's disk is below its threshold (after authentication, which
    `principal` forces first, so strangers learn nothing of the disk)."""
    readiness: Readiness = request.app.state.readiness
    problem = readiness.disk.check().problem
    if problem is not None:
        raise HTTPException(INSUFFICIENT_STORAGE, detail=problem)


DiskRoom = Depends(require_disk_room)
"""`dependencies=[DiskRoom]` on a route that creates runs."""
