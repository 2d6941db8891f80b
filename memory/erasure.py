"""Erasure in the memory layer: tombstones, the locks that order erases against writes, and the
SQL that removes an end user's (or one session's) memories and core blocks.

An erase records a tombstone (table `erasures`, migration 0011) in the transaction that
deletes the data. A memory write that began before the erase (a queued fact extraction, the
episodic memory of a run in flight, a `memory_save` call) must then store nothing, so every
write checks the tombstones first, in its own transaction (`check_writes`, called by
memory.writer):

- a write about a deleted session is refused;
- a write about an erased user (of the erased agent, or of any agent after an erase of all)
  is refused when it came from a run or a session that no longer exists: the erase deleted
  every run and session of that user, so a live one was made after it. A write with neither
  (a client's own POST after the erase) is new data and is stored.

Race-freedom: the erase takes an exclusive transaction-level advisory lock per (tenant, user)
or (tenant, session) before it writes its tombstone; a write takes the same locks shared
before it reads the tombstones, and so does the creation of a user's session
(agents.agent_store.create_session). A write that got its locks first commits before the
erase goes on (whose deletes then see its rows); one that waits reads the tombstone after the
erase has committed (READ COMMITTED: each statement reads what was committed when it began).

The tombstone keeps no user id: only `user_hash`, a SHA-256 of the tenant id and the user id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Executable,
    TextClause,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from core.errors import Conflict
from memory.records import NewMemory
from memory.tables import Erasure, Memory, MemoryBlock, MemoryBlockVersion


class ErasedSource(Conflict):
    """A memory write that an erase forbids: its run or session was erased or deleted (409)."""

    def __init__(self) -> None:
        super().__init__(
            "not stored: the memory comes from a run or session that was erased with its end "
            "user's data, or deleted",
            param="session_id",
        )


def user_hash(tenant_id: uuid.UUID, user_id: str) -> bytes:
    """What a tombstone keeps of an erased user id (32 bytes)."""
    return hashlib.sha256(tenant_id.bytes + b"\x00" + user_id.encode()).digest()


def _lock_key(tenant_id: uuid.UUID, kind: bytes, ident: bytes) -> int:
    digest = hashlib.sha256(b"agentmill-erasure\x00" + kind + tenant_id.bytes + ident).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def user_lock(tenant_id: uuid.UUID, user_id: str) -> int:
    """The advisory lock key of one end user of a tenant (a collision only serialises more)."""
    return _lock_key(tenant_id, b"u", user_id.encode())


def session_lock(tenant_id: uuid.UUID, session_id: uuid.UUID) -> int:
    """The advisory lock key of one session."""
    return _lock_key(tenant_id, b"s", session_id.bytes)


def hold_shared(session: Session, keys: Iterable[int]) -> None:
    """Take these advisory locks shared until the transaction ends (in key order)."""
    ordered = sorted(set(keys))
    if ordered:
        # unnest yields the sorted array in order, so the locks are taken in that order
        session.execute(
            text("SELECT pg_advisory_xact_lock_shared(k) FROM unnest(CAST(:keys AS bigint[])) k"),
            {"keys": ordered},
        )


def _hold_exclusive(session: Session, key: int) -> None:
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _write_keys(tenant_id: uuid.UUID, memories: Sequence[NewMemory]) -> list[int]:
    keys = [user_lock(tenant_id, m.user_id) for m in memories if m.user_id is not None]
    keys += [session_lock(tenant_id, m.session_id) for m in memories if m.session_id is not None]
    return keys


# The runs and sessions tables belong to the agents layer, which memory may not import; a
# memory names them only by id (no foreign key), so their existence is read by name here.
_LIVE_RUNS = text(
    "SELECT id FROM runs WHERE tenant_id = :tenant AND id = ANY(CAST(:ids AS uuid[]))"
)
_LIVE_SESSIONS = text(
    "SELECT id FROM sessions WHERE tenant_id = :tenant AND id = ANY(CAST(:ids AS uuid[]))"
)


def _rows(session: Session, statement: Executable) -> int:
    """How many rows a DELETE or UPDATE touched."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def _live(
    session: Session, query: TextClause, tenant_id: uuid.UUID, ids: set[uuid.UUID]
) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(session.scalars(query, {"tenant": tenant_id, "ids": list(ids)}))


def refused(session: Session, tenant_id: uuid.UUID, memories: Sequence[NewMemory]) -> list[bool]:
    """For each memory, whether an erase forbids storing it (see the module's rules). Reads
    without locking: a write calls `check_writes`; this alone suits an early exit."""
    hashes = {m.user_id: user_hash(tenant_id, m.user_id) for m in memories if m.user_id}
    session_ids = {m.session_id for m in memories if m.session_id is not None}
    if not hashes and not session_ids:
        return [False] * len(memories)
    rows = session.execute(
        select(Erasure.agent_id, Erasure.user_hash, Erasure.session_id).where(
            Erasure.tenant_id == tenant_id,
            or_(Erasure.user_hash.in_(list(hashes.values())), Erasure.session_id.in_(session_ids)),
        )
    ).all()
    gone_sessions = {row.session_id for row in rows if row.session_id is not None}
    erased: dict[bytes, set[uuid.UUID | None]] = {}
    for row in rows:
        if row.user_hash is not None:
            erased.setdefault(row.user_hash, set()).add(row.agent_id)

    def under_tombstone(m: NewMemory) -> bool:
        agents = erased.get(hashes[m.user_id], set()) if m.user_id else set()
        return None in agents or m.agent_id in agents

    suspects = [m for m in memories if under_tombstone(m)]
    runs = _live(
        session, _LIVE_RUNS, tenant_id, {m.source_run_id for m in suspects if m.source_run_id}
    )
    chats = _live(
        session,
        _LIVE_SESSIONS,
        tenant_id,
        {m.session_id for m in suspects if m.source_run_id is None and m.session_id},
    )

    def forbidden(m: NewMemory) -> bool:
        if m.session_id in gone_sessions:
            return True
        if not under_tombstone(m):
            return False
        if m.source_run_id is not None:
            return m.source_run_id not in runs
        return m.session_id is not None and m.session_id not in chats

    return [forbidden(m) for m in memories]


def check_writes(session: Session, tenant_id: uuid.UUID, memories: Sequence[NewMemory]) -> None:
    """Raise `ErasedSource` when an erase forbids any of these memories, holding the users' and
    sessions' locks shared until the caller's transaction ends. Call before writing them."""
    keys = _write_keys(tenant_id, memories)
    if not keys:
        return
    hold_shared(session, keys)
    if any(refused(session, tenant_id, memories)):
        raise ErasedSource()


def record_user_erasure(
    session: Session, tenant_id: uuid.UUID, user_id: str, agent_id: uuid.UUID | None
) -> None:
    """Lock the user exclusively (waiting for writes in flight) and record its tombstone:
    of one agent, or of every agent with `agent_id` None. First step of an erase."""
    _hold_exclusive(session, user_lock(tenant_id, user_id))
    session.execute(
        insert(Erasure).values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            agent_id=agent_id,
            user_hash=user_hash(tenant_id, user_id),
        )
    )


def record_session_erasure(session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Lock the session exclusively and record its tombstone. First step of its deletion."""
    _hold_exclusive(session, session_lock(tenant_id, session_id))
    session.execute(
        insert(Erasure).values(id=uuid.uuid4(), tenant_id=tenant_id, session_id=session_id)
    )


@dataclass(frozen=True)
class MemoryErased:
    """What an erase removed from the memory tables."""

    memories: int
    """Long-term memories (with their embeddings and text index entries)."""
    blocks: int
    """Core memory blocks of the user."""
    block_versions: int
    """Versions in those blocks' histories."""


def erase_user_memories(
    session: Session,
    tenant_id: uuid.UUID,
    user_id: str,
    agent_id: uuid.UUID | None,
    session_ids: Sequence[uuid.UUID],
) -> MemoryErased:
    """Delete the user's memories and blocks (of one agent, or all) and every memory written in
    `session_ids`. Call after `record_user_erasure` in the same transaction."""
    about_user = [Memory.user_id == user_id]
    if agent_id is not None:
        about_user.append(Memory.agent_id == agent_id)
    who = and_(*about_user)
    if session_ids:
        who = or_(who, Memory.session_id.in_(list(session_ids)))
    memories = _rows(session, delete(Memory).where(Memory.tenant_id == tenant_id, who))
    owned = [MemoryBlock.tenant_id == tenant_id, MemoryBlock.user_id == user_id]
    if agent_id is not None:
        owned.append(MemoryBlock.agent_id == agent_id)
    versions = session.scalar(
        select(func.count())
        .select_from(MemoryBlockVersion)
        .join(MemoryBlock, MemoryBlock.id == MemoryBlockVersion.block_id)
        .where(*owned)
    )
    blocks = _rows(session, delete(MemoryBlock).where(*owned))  # versions cascade
    return MemoryErased(memories=memories, blocks=blocks, block_versions=int(versions or 0))


def erase_session_memories(session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID) -> int:
    """Delete every memory written in one session; returns how many."""
    query = delete(Memory).where(Memory.tenant_id == tenant_id, Memory.session_id == session_id)
    return _rows(session, query)
