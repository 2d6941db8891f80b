"""Which query words are too common to select full-text candidates, per tenant.

A word that thousands of memories hold (a user's name, "go", "really") selects most of a user's
memories and says little about which one the query wants; scoring them all is what made a big
user's full-text search slow. memory.candidates keeps such words for scoring and selects
candidates by the others. Each tenant's list is counted from that tenant's own memories
(memory.queries.word_postings: a sample of up to SAMPLE_ROWS of them), so one tenant's data never
changes which words select in another's searches; this cache re-reads a tenant's counts at most
once a minute, so searches pay neither the count nor its planning."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from core.db import transaction
from memory import queries as store

SAMPLE_ROWS = 5000
"""Memories of a tenant counted for its word list (all of them in a smaller tenant)."""
MOST_WORDS = 1000
"""Commonest words kept per tenant (as many as ANALYZE keeps for a column at most)."""
MAX_TENANTS = 1024
"""Tenants whose lists are kept (least recently searched forgotten first)."""


@dataclass
class _Reading:
    read_at: float
    postings: list[tuple[str, float]]
    over: dict[int, str] = field(default_factory=dict)


class CommonWords:
    """Each tenant's word counts, re-read when older than `max_age_s`."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sample: int = SAMPLE_ROWS,
    ) -> None:
        self._engine = engine
        self._max_age_s = max_age_s
        self._clock = clock
        self._sample = sample
        self._lock = threading.Lock()
        self._readings: OrderedDict[uuid.UUID, _Reading] = OrderedDict()

    def over(self, tenant_id: uuid.UUID, postings: int) -> str:
        """The words (lexemes, space-separated) placed in more than `postings` of the tenant's
        memories; empty for a tenant with no more memories than that."""
        now = self._clock()
        with self._lock:
            reading = self._readings.get(tenant_id)
            if reading is not None:
                self._readings.move_to_end(tenant_id)
        if reading is None or now - reading.read_at > self._max_age_s:
            # Read outside the lock: one tenant's count never delays another's searches.
            with transaction(self._engine) as session:
                counts = store.word_postings(
                    session, tenant_id, sample=self._sample, most=MOST_WORDS
                )
            reading = _Reading(now, counts)
            with self._lock:
                self._readings[tenant_id] = reading
                self._readings.move_to_end(tenant_id)
                while len(self._readings) > MAX_TENANTS:
                    self._readings.popitem(last=False)
        with self._lock:
            if postings not in reading.over:
                reading.over[postings] = " ".join(w for w, n in reading.postings if n > postings)
            return reading.over[postings]
