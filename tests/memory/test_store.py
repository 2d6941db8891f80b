"""MemoryStore with the real embedder: writing, deduplication, hybrid search, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from core.config import Settings
from core.errors import ConfigError
from memory.embedder import HashingEmbedder
from memory.errors import (
    ContentTooLarge,
    EmbeddingDimensionMismatch,
    EmptyContent,
    InvalidMemoryInput,
    UnknownFilterField,
)
from memory.records import NewMemory
from memory.store import MemoryStore


def test_add_and_get_round_trip(memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID) -> None:
    run, message, when = uuid.uuid4(), uuid.uuid4(), datetime(2024, 5, 1, 12, tzinfo=UTC)
    result = memory.add(
        tenant,
        NewMemory(
            agent,
            "Gina's cat is named Pixel",
            user_id="gina",
            kind="fact",
            importance=0.8,
            metadata={"topic": "pets"},
            created_at=when,
            source_run_id=run,
            source_message_id=message,
        ),
    )
    assert not result.deduplicated
    got = memory.get(tenant, result.id)
    assert (got.content, got.user_id, got.kind, got.importance) == (
        "Gina's cat is named Pixel",
        "gina",
        "fact",
        0.8,
    )
    assert (got.metadata, got.created_at, got.source_run_id, got.source_message_id) == (
        {"topic": "pets"},
        when,
        run,
        message,
    )


def test_batch_insert_indexes_turns_with_their_neighbours(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    sess = uuid.uuid4()
    turns = ["A: I finally went to the pottery class.", "B: How was it?", "A: Loved it!"]
    first = memory.add_many(tenant, [NewMemory(agent, t, session_id=sess) for t in turns])
    assert len({r.id for r in first}) == 3
    later = memory.add(tenant, NewMemory(agent, "B: Will you go again next week?", session_id=sess))
    with engine.connect() as conn:
        rows = {c: ctx for c, ctx in conn.execute(text("SELECT content, context FROM memories"))}
        assert rows["B: How was it?"] == f"{turns[0]}\n{turns[2]}"
        # A later write sees the last two stored turns of its session as context.
        assert rows["B: Will you go again next week?"] == f"{turns[1]}\n{turns[2]}"
        # Without a session there is no neighbourhood: the context embedding is the content's.
        memory.add(tenant, NewMemory(agent, "Lone fact about kayaks", kind="fact"))
        same = conn.execute(
            text("SELECT embedding = context_embedding FROM memories WHERE content LIKE 'Lone%'")
        ).scalar()
        assert same is True
    # "Loved it!" alone says nothing about pottery; its neighbours make it findable.
    hits = memory.search(tenant, "pottery class", k=3, where={"session_id": sess})
    assert "A: Loved it!" in [h.memory.content for h in hits]
    assert later.id in {h.memory.id for h in memory.search(tenant, "next week", k=2)}


def test_near_duplicates_update_the_existing_row(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    first = memory.add(
        tenant,
        NewMemory(
            agent,
            "Hana lives in Kyoto.",
            user_id="hana",
            kind="fact",
            importance=0.3,
            metadata={"a": 1},
        ),
    )
    again = memory.add(
        tenant,
        NewMemory(
            agent,
            "Hana lives in Kyoto",
            user_id="hana",
            kind="fact",
            importance=0.9,
            metadata={"b": 2},
        ),
    )
    assert again == type(again)(id=first.id, deduplicated=True)
    merged = memory.get(tenant, first.id)
    assert merged.content == "Hana lives in Kyoto"
    assert merged.metadata == {"a": 1, "b": 2}
    assert merged.importance == 0.9
    assert merged.updated_at >= merged.created_at
    # Same words, other scope (another user, another kind): separate memories.
    other_user = memory.add(
        tenant, NewMemory(agent, "Hana lives in Kyoto", user_id="ivan", kind="fact")
    )
    as_summary = memory.add(
        tenant, NewMemory(agent, "Hana lives in Kyoto", user_id="hana", kind="summary")
    )
    different = memory.add(
        tenant, NewMemory(agent, "Hana lives in Osaka now", user_id="hana", kind="fact")
    )
    assert not (other_user.deduplicated)
    assert not (as_summary.deduplicated)
    assert not (different.deduplicated)
    # Inside one batch the later twin wins as well.
    batch = memory.add_many(
        tenant,
        [
            NewMemory(agent, "Jo owns a canoe", kind="fact"),
            NewMemory(agent, "Jo owns a canoe.", kind="fact"),
        ],
    )
    assert batch[1].id == batch[0].id
    assert batch[1].deduplicated
    assert memory.get(tenant, batch[0].id).content == "Jo owns a canoe."
    assert len(memory.list_memories(tenant, limit=100)) == 5


def test_episodic_turns_repeat_across_sessions(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    first = memory.add(tenant, NewMemory(agent, "Thanks, see you!", session_id=uuid.uuid4()))
    second = memory.add(tenant, NewMemory(agent, "Thanks, see you!", session_id=uuid.uuid4()))
    assert first.id != second.id
    assert not second.deduplicated


def test_hybrid_search_finds_by_words_and_by_meaning(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    facts = [
        "Kim adopted a golden retriever puppy last spring",
        "Kim's licence plate is XK-4471",
        "Kim works as a nurse at the city hospital",
        "Kim enjoys painting landscapes on weekends",
        "The quarterly report is due on Monday",
    ]
    memory.add_many(tenant, [NewMemory(agent, f, user_id="kim", kind="fact") for f in facts])
    by_meaning = memory.search(tenant, "Does Kim have a dog?", k=2)
    assert by_meaning[0].memory.content == facts[0]
    assert by_meaning[0].vector_rank == 1
    by_words = memory.search(tenant, "xk-4471", k=1)  # a code the embedding cannot know
    assert by_words[0].memory.content == facts[1]
    assert by_words[0].text_rank == 1
    assert [h.score for h in memory.search(tenant, "nurse hospital", k=5)] == sorted(
        (h.score for h in memory.search(tenant, "nurse hospital", k=5)), reverse=True
    )
    assert len(memory.search(tenant, "anything at all", k=3)) == 3
    assert memory.search(tenant, "Kim", where={"user_id": "nobody"}) == []


def test_search_honours_kind_time_and_metadata_filters(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    memory.add_many(
        tenant,
        [
            NewMemory(
                agent,
                "Lena ran a marathon in Berlin",
                kind="fact",
                created_at=t0,
                metadata={"year": 2024},
            ),
            NewMemory(
                agent,
                "Lena ran a half marathon in Rome",
                kind="summary",
                created_at=t0 + timedelta(days=60),
                metadata={"year": 2024},
            ),
            NewMemory(
                agent,
                "Lena ran a trail race in Oslo",
                kind="fact",
                created_at=t0 + timedelta(days=400),
                metadata={"year": 2025},
            ),
        ],
    )

    def found(**where: object) -> set[str]:
        return {
            h.memory.content.split()[-1] for h in memory.search(tenant, "Lena ran", where=where)
        }

    assert found() == {"Berlin", "Rome", "Oslo"}
    assert found(kind="summary") == {"Rome"}
    assert found(created_after=t0 + timedelta(days=30)) == {"Rome", "Oslo"}
    assert found(created_before=t0 + timedelta(days=30)) == {"Berlin"}
    assert found(metadata={"year": 2025}) == {"Oslo"}
    assert found(agent_id=uuid.uuid4()) == set()


@pytest.mark.parametrize(
    ("item", "error", "param"),
    [
        (dict(content=""), EmptyContent, "content"),
        (dict(content="  \n\t"), EmptyContent, "content"),
        (dict(content="x" * 501), ContentTooLarge, "content"),
        (dict(content="ok", embedding=[0.1] * 383), EmbeddingDimensionMismatch, "embedding"),
        (dict(content="ok", importance=1.5), InvalidMemoryInput, "importance"),
        (dict(content="ok", kind="dream"), InvalidMemoryInput, "kind"),
        (dict(content="ok", created_at=datetime(2024, 1, 1)), InvalidMemoryInput, "created_at"),
    ],
)
def test_bad_memories_are_refused_before_anything_is_written(
    memory: MemoryStore,
    tenant: uuid.UUID,
    agent: uuid.UUID,
    item: dict[str, object],
    error: type[Exception],
    param: str,
) -> None:
    good = NewMemory(agent, "a perfectly fine memory")
    with pytest.raises(error) as info:
        memory.add_many(tenant, [good, NewMemory(agent_id=agent, **item)])  # type: ignore[arg-type]
    assert getattr(info.value, "param", None) == param
    assert memory.list_memories(tenant) == []


def test_error_messages_say_what_is_wrong(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    with pytest.raises(ContentTooLarge, match="501 characters; the limit is 500") as too_big:
        memory.add(tenant, NewMemory(agent, "y" * 501))
    assert (too_big.value.size, too_big.value.limit) == (501, 500)
    with pytest.raises(EmbeddingDimensionMismatch, match=r"3 dimensions.*384"):
        memory.add(tenant, NewMemory(agent, "z", embedding=[1.0, 0.0, 0.0]))
    with pytest.raises(UnknownFilterField, match="'colour'"):
        memory.search(tenant, "anything", where={"colour": "red"})
    with pytest.raises(UnknownFilterField):
        memory.list_memories(tenant, {"users": "ann"})
    with pytest.raises(EmptyContent, match="query"):
        memory.search(tenant, " ")
    with pytest.raises(ContentTooLarge):
        memory.search(tenant, "q" * 501)
    with pytest.raises(InvalidMemoryInput, match="k must be"):
        memory.search(tenant, "anything", k=0)


def test_an_embedder_of_another_dimension_is_refused(
    engine: Engine, memory_settings: Settings
) -> None:
    with pytest.raises(ConfigError, match="128 dimensions"):
        MemoryStore(engine, HashingEmbedder(dimension=128), memory_settings)


def test_a_precomputed_embedding_is_used_as_given(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    vector = [0.0] * 384
    vector[5] = 2.0  # normalised on the way in
    result = memory.add(tenant, NewMemory(agent, "opaque", kind="fact", embedding=vector))
    hits = memory.search(tenant, "opaque", k=1)
    assert hits[0].memory.id == result.id
