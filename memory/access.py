"""Access statistics (count, last access) written off the query path.

A search only notes which memories it returned; a background thread folds those notes into
one batched UPDATE per tenant, so searches never wait on a write or contend for row locks."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter

from sqlalchemy import Engine

from core.db import transaction
from memory import queries as store

log = logging.getLogger(__name__)


class AccessRecorder:
    """Collects (tenant, memory id) hits and applies them in the background."""

    def __init__(self, engine: Engine, *, interval_s: float = 1.0) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._pending: dict[uuid.UUID, Counter[uuid.UUID]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def record(self, tenant_id: uuid.UUID, memory_ids: list[uuid.UUID]) -> None:
        """Note that a search returned these memories; returns at once."""
        if not memory_ids:
            return
        with self._lock:
            if self._closed:
                return
            self._pending.setdefault(tenant_id, Counter()).update(memory_ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="memory-access-stats", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Apply everything noted so far, in the calling thread."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for tenant_id, counts in pending.items():
            with transaction(self._engine) as session:
                store.record_access(session, tenant_id, counts)

    def close(self) -> None:
        """Apply what is pending and stop the background thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._closing.set()
        self._wake.set()
        if thread is not None:
            thread.join()
        self.flush()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # stats are best effort: never kill the thread
                log.exception("could not record memory access statistics")
            with self._lock:
                if self._closed:
                    return
            # Batch: let more hits accumulate before the next write (close() cuts it short).
            self._closing.wait(self._interval_s)
