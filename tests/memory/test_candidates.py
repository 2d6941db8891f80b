"""The candidate statement on the real database: the full-text retriever selects by the query's
rarer words and scores with all of them, inside the filter's scope."""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy import Engine, text

from core.db import transaction
from memory import candidates
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.store import MemoryStore


def _unit(rng: np.random.Generator) -> list[float]:
    v = rng.standard_normal(384)
    return list(v / np.linalg.norm(v))


def _text_ranks(
    engine: Engine,
    tenant: uuid.UUID,
    where: MemoryFilter,
    query: str,
    common_words: str,
    rng: np.random.Generator,
) -> dict[str, int]:
    with transaction(engine) as session:
        found = candidates.search_candidates(
            session,
            tenant,
            where,
            query=query,
            embedding=_unit(rng),
            depth=10,
            context_text_weight=0.5,
            ef_search=40,
            common_words=common_words,
        )
    return {c.record.content: c.text_rank for c in found if c.text_rank is not None}


def test_a_common_word_scores_but_does_not_select(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    rng = np.random.default_rng(3)
    contents = [
        "Kim glazed a bowl in the pottery kiln",
        "Kim bought pottery at the market",
        "The kiln needs a new shelf",
        "Kim went hiking",
    ]
    memory.add_many(
        tenant,
        [NewMemory(agent, c, user_id="kim", kind="fact", embedding=_unit(rng)) for c in contents],
    )
    where = MemoryFilter(agent_id=agent, user_id="kim")
    every_word = _text_ranks(engine, tenant, where, "Kim's pottery kiln", "", rng)
    assert set(every_word) == set(contents)  # "kim" is in all four
    # "kim" and "potteri" are common: only memories with "kiln" are candidates, and the one
    # holding the common words as well ranks first.
    rare_only = _text_ranks(engine, tenant, where, "Kim's pottery kiln", "kim potteri", rng)
    assert rare_only == {contents[0]: 1, contents[2]: 2}
    assert _text_ranks(engine, tenant, where, "Kim's pottery", "kim potteri", rng) == {}


def test_the_text_retriever_stays_in_the_filter(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    rng = np.random.default_rng(4)
    other_agent = uuid.uuid4()
    memory.add_many(
        tenant,
        [
            NewMemory(agent, "Ann keeps bees", user_id="ann", kind="fact", embedding=_unit(rng)),
            NewMemory(agent, "Bob keeps bees", user_id="bob", kind="fact", embedding=_unit(rng)),
            NewMemory(agent, "Bees for the agent", kind="fact", embedding=_unit(rng)),
            NewMemory(other_agent, "Ann's bees", user_id="ann", kind="fact", embedding=_unit(rng)),
        ],
    )
    by_user = MemoryFilter(agent_id=agent, user_id="ann")
    assert set(_text_ranks(engine, tenant, by_user, "bees", "", rng)) == {"Ann keeps bees"}
    by_agent = MemoryFilter(agent_id=agent)
    assert set(_text_ranks(engine, tenant, by_agent, "bees", "", rng)) == {
        "Ann keeps bees",
        "Bob keeps bees",
        "Bees for the agent",
    }
    assert len(_text_ranks(engine, tenant, MemoryFilter(), "bees", "", rng)) == 4


def test_scope_keys_match_the_index_expression(engine: Engine, agent: uuid.UUID) -> None:
    with transaction(engine) as session:
        keys = session.execute(
            text("SELECT memory_scope_keys(:agent, :user)"), {"agent": agent, "user": "ann"}
        ).scalar_one()
        no_user = session.execute(
            text("SELECT memory_scope_keys(:agent, NULL)"), {"agent": agent}
        ).scalar_one()
    by_user = candidates.scope_keys(MemoryFilter(agent_id=agent, user_id="ann"))
    by_agent = candidates.scope_keys(MemoryFilter(agent_id=agent))
    assert by_user is not None
    assert by_agent is not None
    assert set(by_user) <= set(keys)
    assert set(by_agent) <= set(keys)
    assert set(by_agent) <= set(no_user)
    assert not set(by_user) & set(no_user)
    assert candidates.scope_keys(MemoryFilter(user_id="ann")) is None
