"""Which query words are too common to select full-text candidates.

A word that thousands of memories hold (a user's name, "go", "really") selects most of a user's
memories and says little about which one the query wants; scoring them all is what made a big
user's full-text search slow. The planner already counts the commonest words of
`memories.search_tsv` (ANALYZE keeps them in pg_stats with their frequencies); this cache reads
that list at most once a minute, so searches pay neither the catalog query nor its planning.
memory.candidates keeps such words for scoring and selects candidates by the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from core.db import transaction
from memory import store


class CommonWords:
    """The table's word counts as the statistics estimate them, re-read when older than
    `max_age_s`."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._postings: list[tuple[str, float]] = []
        self._over: dict[int, str] = {}

    def over(self, postings: int) -> str:
        """The words (lexemes, space-separated) the statistics place in more than `postings`
        memories; empty before the table was first analysed."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at > self._max_age_s:
                with transaction(self._engine) as session:
                    self._postings = store.word_postings(session)
                self._read_at = now
                self._over = {}
            if postings not in self._over:
                self._over[postings] = " ".join(w for w, n in self._postings if n > postings)
            return self._over[postings]
