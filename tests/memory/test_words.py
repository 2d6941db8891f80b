"""Common words counted per tenant from its own memories, cached and re-read when old."""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy import Engine, text

from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.store import MemoryStore
from memory.words import CommonWords
from tests.memory.conftest import make_tenant


def _add(memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID, texts: list[str]) -> None:
    rng = np.random.default_rng(len(texts))
    memory.add_many(
        tenant,
        [
            NewMemory(agent, t, kind="fact", embedding=list(v / np.linalg.norm(v)))
            for t, v in zip(texts, rng.standard_normal((len(texts), 384)), strict=True)
        ],
    )


def _pottery(n: int) -> list[str]:
    return [f"pottery class number {i}" for i in range(n)]


def test_common_words_are_the_tenants_own_and_are_reread_when_old(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    now = [0.0]
    words = CommonWords(engine, max_age_s=60.0, clock=lambda: now[0])
    assert words.over(tenant, 10) == ""  # no memories yet
    _add(memory, tenant, agent, [*_pottery(40), "the kiln cracked"])
    assert words.over(tenant, 10) == ""  # still the cached reading
    now[0] = 61.0
    common = words.over(tenant, 10).split()
    assert {"potteri", "class"} <= set(common)
    assert "kiln" not in common
    assert "potteri" not in words.over(tenant, 100).split()


def test_another_tenants_memories_change_nothing(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    crowd = make_tenant(engine, "crowd")
    _add(memory, crowd, uuid.uuid4(), _pottery(400))
    _add(memory, tenant, agent, ["my pottery class moved", "pottery on tuesdays", "a kiln"])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE memories"))  # table-wide statistics now say "potteri"
    words = CommonWords(engine)
    assert "potteri" in words.over(crowd, 300).split()
    assert words.over(tenant, 1) == "potteri"  # of its own three memories, two hold it
    assert words.over(tenant, 300) == ""
    # So in a search the word still selects the tenant's memories (with the table-wide
    # statistics it was common, selected nothing, and the full-text retriever found none).
    texts = [
        c.record.content
        for c in memory.candidates(
            tenant,
            "pottery",
            memory.embedder.embed(["pottery"])[0].tolist(),
            k=3,
            where=MemoryFilter(agent_id=agent),
        )
        if c.text_rank is not None
    ]
    assert sorted(texts) == ["my pottery class moved", "pottery on tuesdays"]


def test_a_big_tenant_is_counted_from_a_sample_and_scaled(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    _add(memory, tenant, agent, _pottery(40))
    words = CommonWords(engine, sample=10)
    # Ten memories counted, each holding the word: 10 x 40/10 = 40 estimated.
    assert "potteri" in words.over(tenant, 39).split()
    assert "potteri" not in words.over(tenant, 40).split()
