"""Worker heartbeats in the database: who is alive, as /readyz reports it."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from core.db import transaction

BEAT = text(
    "INSERT INTO worker_heartbeats (worker, hostname, pid, concurrency, started_at, beat_at) "
    "VALUES (:worker, :hostname, :pid, :concurrency, clock_timestamp(), clock_timestamp()) "
    "ON CONFLICT (worker) DO UPDATE SET beat_at = clock_timestamp()"
)
PRUNE = text(
    "DELETE FROM worker_heartbeats WHERE beat_at < clock_timestamp() - make_interval(secs => :s)"
)
LIVE = text(
    "SELECT worker, hostname, pid, concurrency, started_at, beat_at, "
    "EXTRACT(EPOCH FROM clock_timestamp() - beat_at) AS age_s FROM worker_heartbeats "
    "WHERE beat_at > clock_timestamp() - make_interval(secs => :s) ORDER BY beat_at DESC"
)
FORGET_AFTER_S = 86_400.0


@dataclass(frozen=True)
class WorkerBeat:
    """One live worker as its last heartbeat describes it."""

    worker: str
    hostname: str
    pid: int
    concurrency: int
    started_at: datetime
    age_s: float
    """Seconds since its last beat."""


class Heartbeat:
    """One worker process's heartbeat (call `beat` periodically)."""

    def __init__(self, engine: Engine, concurrency: int) -> None:
        self._engine = engine
        self._params = {
            "worker": f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": concurrency,
        }

    @property
    def worker(self) -> str:
        """This worker's name in the table."""
        return str(self._params["worker"])

    def beat(self) -> None:
        """Record that this worker is alive; forget workers silent for a day."""
        with transaction(self._engine) as session:
            session.execute(BEAT, self._params)
            session.execute(PRUNE, {"s": FORGET_AFTER_S})

    def stop(self) -> None:
        """Remove this worker's row (a clean shutdown)."""
        with transaction(self._engine) as session:
            session.execute(
                text("DELETE FROM worker_heartbeats WHERE worker = :w"), {"w": self.worker}
            )


def live_workers(engine: Engine, within_s: float) -> list[WorkerBeat]:
    """Workers that beat within the last `within_s` seconds, most recent first."""
    with engine.connect() as conn:
        rows = conn.execute(LIVE, {"s": within_s}).all()
    return [
        WorkerBeat(r.worker, r.hostname, r.pid, r.concurrency, r.started_at, float(r.age_s))
        for r in rows
    ]
