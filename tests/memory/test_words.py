"""Common words from the planner's statistics, cached."""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy import Engine, text

from memory.records import NewMemory
from memory.service import MemoryStore
from memory.words import CommonWords


def test_common_words_come_from_the_statistics_and_are_reread_when_old(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    rng = np.random.default_rng(5)
    items = [f"pottery class number {i}" for i in range(40)] + ["the kiln cracked"]
    memory.add_many(
        tenant,
        [
            NewMemory(agent, t, kind="fact", embedding=list(v / np.linalg.norm(v)))
            for t, v in zip(items, rng.standard_normal((len(items), 384)), strict=True)
        ],
    )
    now = [0.0]
    words = CommonWords(engine, max_age_s=60.0, clock=lambda: now[0])
    assert words.over(10) == ""  # no statistics before the first ANALYZE
    with engine.begin() as conn:
        conn.execute(text("ANALYZE memories"))
    assert words.over(10) == ""  # still the cached reading
    now[0] = 61.0
    common = words.over(10).split()
    assert {"potteri", "class"} <= set(common)
    assert "kiln" not in common
    assert "potteri" not in words.over(100).split()
