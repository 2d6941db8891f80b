"""`MemoryStore`: the one object agents/ and api/ use for long-term memory and core blocks.

It validates queries, delegates writes to memory.writer and ranks search candidates
(memory.retrieval); the SQL lives in memory.queries, memory.candidates and memory.blocks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from core.config import Settings
from core.db import is_transient_db_error, transaction
from memory import blocks, candidates, model_record, writer
from memory import queries as store
from memory.access import AccessRecorder
from memory.candidates import Candidate
from memory.embedder import Embedder
from memory.errors import ContentTooLarge, EmptyContent, InvalidMemoryInput
from memory.filters import MemoryFilter
from memory.records import MemoryRecord, NewMemory, SearchHit, WriteResult
from memory.retrieval import DEFAULT_WEIGHTS, RetrievalWeights, rank
from memory.words import CommonWords

MAX_K = 100
"""Most results one search returns."""


class MemoryStore:
    """Long-term memories and core memory blocks of every tenant, always scoped by tenant."""

    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        settings: Settings,
        *,
        weights: RetrievalWeights = DEFAULT_WEIGHTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.embedder = embedder
        self.settings = settings
        self.weights = weights
        self._clock = clock
        self._access = AccessRecorder(engine)
        self._common_words = CommonWords(engine)
        self._record: model_record.ModelRecord | None = None
        self._record_lock = threading.Lock()
        # The stored vectors must come from this model: `EmbeddingModelChanged` at once. A
        # database that is briefly down defers the check to the first use (a worker starting
        # before Postgres must still start).
        try:
            self.model_record()
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise

    def model_record(self) -> model_record.ModelRecord:
        """The database's record of its vectors' model, checked against the embedder on the
        first call (`EmbeddingModelChanged`), then kept."""
        with self._record_lock:
            if self._record is None:
                self._record = model_record.check(self.engine, self.embedder)
            return self._record

    @property
    def dimension(self) -> int:
        """Width of the stored vectors (the model's)."""
        return self.model_record().dimension

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Write pending access statistics and stop the background writer."""
        self._access.close()

    def flush_access_stats(self) -> None:
        """Write pending access statistics now (they are otherwise written within a second)."""
        self._access.flush()

    # -- writing ---------------------------------------------------------------------------

    def add(self, tenant_id: uuid.UUID, memory: NewMemory) -> WriteResult:
        """Store one memory (or update its near-duplicate)."""
        return self.add_many(tenant_id, [memory])[0]

    def add_many(self, tenant_id: uuid.UUID, memories: Sequence[NewMemory]) -> list[WriteResult]:
        """Store memories in one transaction, embedding them in one batch beforehand. Episodic
        memories of a session are indexed with their neighbouring turns (earlier ones already
        stored, later ones in this batch, in list order). A memory whose embedding is within
        `memory_dedupe_similarity` of one in its scope updates that one instead. Nothing is
        written when one memory is invalid. memory.writer has the details."""
        for item in memories:
            writer.validate(item, self.settings, self.dimension)
        if not memories:
            return []
        embedded = writer.embed(self.embedder, memories)
        with transaction(self.engine) as session:
            return writer.write(
                session, tenant_id, memories, embedded, self.settings.memory_dedupe_similarity
            )

    # -- reading ---------------------------------------------------------------------------

    def search(
        self,
        tenant_id: uuid.UUID,
        query: str,
        *,
        k: int = 10,
        where: MemoryFilter | Mapping[str, Any] | None = None,
        weights: RetrievalWeights | None = None,
        now: datetime | None = None,
    ) -> list[SearchHit]:
        """The k memories that best answer `query` among those the filter allows, best first.

        `where` may be a `MemoryFilter` or a mapping of its fields (unknown fields raise
        `UnknownFilterField`). `now` anchors recency (default: the clock)."""
        limit = self.settings.memory_max_content_chars
        if not query.strip():
            raise EmptyContent("query")
        if len(query) > limit:
            raise ContentTooLarge(len(query), limit, param="query")
        if not 1 <= k <= MAX_K:
            raise InvalidMemoryInput(f"k must be between 1 and {MAX_K}", param="k")
        flt = self._filter(where)
        chosen = weights or self.weights
        self.model_record()  # never search with another model's query vector
        embedding = self.embedder.embed_query(query).tolist()
        found = self.candidates(tenant_id, query, embedding, k=k, where=flt, weights=chosen)
        hits = rank(found, k, now or self._clock(), chosen)
        self._access.record(tenant_id, [hit.memory.id for hit in hits])
        return hits

    def candidates(
        self,
        tenant_id: uuid.UUID,
        query: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: MemoryFilter,
        weights: RetrievalWeights | None = None,
    ) -> list[Candidate]:
        """The candidate stage of `search` for an already embedded, validated query: what the
        three retrievers propose for k results, unranked (bench/memory_latency.py times it)."""
        chosen = weights or self.weights
        vector_depth = chosen.vector_candidates(k)
        with transaction(self.engine) as session:
            return candidates.search_candidates(
                session,
                tenant_id,
                where,
                query=query,
                embedding=embedding,
                depth=chosen.candidates(k),
                vector_depth=vector_depth,
                context_text_weight=chosen.context_text_weight,
                ef_search=max(self.settings.memory_ef_search, vector_depth),
                common_words=self._common_words.over(tenant_id, chosen.common_postings),
            )

    def get(self, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRecord:
        """One memory, or `NotFound` (also when it belongs to another tenant)."""
        with transaction(self.engine) as session:
            return store.get_memory(session, tenant_id, memory_id)

    def list_memories(
        self,
        tenant_id: uuid.UUID,
        where: MemoryFilter | Mapping[str, Any] | None = None,
        *,
        limit: int = 50,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[MemoryRecord]:
        """Memories matching the filter newest first, `limit` of them after the (created_at,
        id) key `before` (the last of the previous page)."""
        if not 1 <= limit <= 1000:
            raise InvalidMemoryInput("limit must be 1-1000", param="limit")
        with transaction(self.engine) as session:
            return store.list_memories(
                session, tenant_id, self._filter(where), limit=limit, before=before
            )

    @staticmethod
    def _filter(where: MemoryFilter | Mapping[str, Any] | None) -> MemoryFilter:
        if where is None:
            return MemoryFilter()
        if isinstance(where, MemoryFilter):
            return where
        return MemoryFilter.parse(where)

    def update(
        self,
        tenant_id: uuid.UUID,
        memory_id: uuid.UUID,
        *,
        content: str | None = None,
        importance: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> MemoryRecord:
        """Change a memory in one transaction: new content (validated like a write, embedded
        again), importance, or metadata (replaced whole). Content that another memory of its
        scope already holds (a near-duplicate, as a write would merge) is `Conflict`; an
        invalid part changes nothing. `NotFound` for another tenant's memory."""
        probe = NewMemory(
            agent_id=memory_id,
            content="-" if content is None else content,
            importance=0.5 if importance is None else importance,
        )
        writer.validate(probe, self.settings, self.dimension)
        vectors: dict[str, Any] = {}
        if content is not None:
            with transaction(self.engine) as session:
                context = store.memory_context(session, tenant_id, memory_id)
            texts = [content, f"{content}\n{context}"] if context else [content]
            embedded = self.embedder.embed(texts)
            vectors = {"content": content, "embedding": embedded[0]}
            vectors["context_embedding"] = embedded[-1]
        with transaction(self.engine) as session:
            return store.patch_memory(
                session,
                tenant_id,
                memory_id,
                {**vectors, "importance": importance, "metadata_": metadata},
                self.settings.memory_dedupe_similarity,
            )

    # -- deleting --------------------------------------------------------------------------

    def delete(self, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> None:
        """Delete one memory, or `NotFound`."""
        with transaction(self.engine) as session:
            store.delete_memory(session, tenant_id, memory_id)

    # -- core memory blocks ----------------------------------------------------------------

    def set_block(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        value: str,
        *,
        user_id: str | None = None,
        char_limit: int | None = None,
        author: str = "api",
        edit_key: str | None = None,
    ) -> blocks.Block:
        """Create or replace a block's value (a change adds a version); once per `edit_key`."""
        with transaction(self.engine) as session:
            return blocks.set_block(
                session,
                tenant_id,
                agent_id,
                label,
                value,
                user_id=user_id,
                char_limit=char_limit,
                default_limit=self.settings.memory_block_char_limit,
                author=author,
                edit_key=edit_key,
            )

    def append_to_block(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        text: str,
        *,
        user_id: str | None = None,
        author: str = "agent",
        edit_key: str | None = None,
    ) -> blocks.Block:
        """Append a line to a block (the agent's core_memory_append); once per `edit_key`."""
        with transaction(self.engine) as session:
            return blocks.append_to_block(
                session,
                tenant_id,
                agent_id,
                label,
                text,
                user_id=user_id,
                author=author,
                edit_key=edit_key,
            )

    def replace_in_block(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        old: str,
        new: str,
        *,
        user_id: str | None = None,
        author: str = "agent",
        edit_key: str | None = None,
    ) -> blocks.Block:
        """Replace text in a block (the agent's core_memory_replace); once per `edit_key`."""
        with transaction(self.engine) as session:
            return blocks.replace_in_block(
                session,
                tenant_id,
                agent_id,
                label,
                old,
                new,
                user_id=user_id,
                author=author,
                edit_key=edit_key,
            )

    def get_block(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, label: str, *, user_id: str | None = None
    ) -> blocks.Block:
        """One block, or `NotFound`."""
        with transaction(self.engine) as session:
            return blocks.get_block(session, tenant_id, agent_id, label, user_id=user_id)

    def list_blocks(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, *, user_id: str | None = None
    ) -> list[blocks.Block]:
        """The blocks an agent's context holds: its own, plus the user's when given."""
        with transaction(self.engine) as session:
            return blocks.list_blocks(session, tenant_id, agent_id, user_id=user_id)

    def block_history(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        *,
        user_id: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[blocks.BlockVersion]:
        """A block's versions after version `after`, oldest first (at most `limit`)."""
        with transaction(self.engine) as session:
            return blocks.block_history(
                session, tenant_id, agent_id, label, user_id=user_id, after=after, limit=limit
            )

    def delete_block(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, label: str, *, user_id: str | None = None
    ) -> None:
        """Delete a block and its history."""
        with transaction(self.engine) as session:
            blocks.delete_block(session, tenant_id, agent_id, label, user_id=user_id)
