"""Core memory blocks (as in Letta): labelled text an agent always sees, per agent or per
(agent, user), with a character limit and an append-only version history. The SQL for blocks
lives here.

An edit may carry an `edit_key` (the agent's tool calls pass their idempotency key): the
version it writes records the key, and an edit that comes back with a key the block already
holds (a tool call run again after a crash) changes nothing and returns the block as it is.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.errors import NotFound, UserError
from memory.errors import BlockTooLarge
from memory.tables import MemoryBlock, MemoryBlockVersion

_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_BLOCK_LIMIT = 100_000
"""No block may be configured larger than this (characters): it is always in the context."""


@dataclass(frozen=True)
class Block:
    """A block as callers see it."""

    label: str
    """Name such as `persona` or `human`."""
    value: str
    """Current text."""
    char_limit: int
    """Most characters `value` may hold."""
    version: int
    """1 for the first value, +1 per change."""
    user_id: str | None
    """None for the agent's own block, else the user this block is about."""
    updated_at: datetime
    """Time of the current version."""


@dataclass(frozen=True)
class BlockVersion:
    """One entry of a block's history."""

    version: int
    """Version number."""
    value: str
    """The text at that version."""
    char_limit: int
    """The limit at that version."""
    author: str
    """Who wrote it: api, agent, system..."""
    created_at: datetime
    """When."""


def validate_label(label: str) -> str:
    """Return the label or raise `UserError` describing a valid one."""
    if not _LABEL.match(label):
        raise UserError(
            "block label must be 1-64 lower-case letters, digits or '_', starting with a letter",
            param="label",
        )
    return label


def _check(label: str, value: str, limit: int) -> None:
    if not 1 <= limit <= MAX_BLOCK_LIMIT:
        raise UserError(f"char_limit must be between 1 and {MAX_BLOCK_LIMIT}", param="char_limit")
    if len(value) > limit:
        raise BlockTooLarge(label, len(value), limit)


def _public(row: MemoryBlock) -> Block:
    return Block(
        label=row.label,
        value=row.value,
        char_limit=row.char_limit,
        version=row.version,
        user_id=row.user_id or None,
        updated_at=row.updated_at,
    )


def _locked(
    session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID, label: str, user_id: str | None
) -> MemoryBlock | None:
    return session.scalars(
        select(MemoryBlock)
        .where(
            MemoryBlock.tenant_id == tenant_id,
            MemoryBlock.agent_id == agent_id,
            MemoryBlock.user_id == (user_id or ""),
            MemoryBlock.label == label,
        )
        .with_for_update()
    ).one_or_none()


def _applied(session: Session, row: MemoryBlock, edit_key: str | None) -> bool:
    """Whether the block already holds a version written by the edit with this key."""
    if edit_key is None:
        return False
    found = session.scalar(
        select(MemoryBlockVersion.version).where(
            MemoryBlockVersion.block_id == row.id, MemoryBlockVersion.edit_key == edit_key
        )
    )
    return found is not None


def set_block(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    label: str,
    value: str,
    *,
    user_id: str | None = None,
    char_limit: int | None = None,
    default_limit: int,
    author: str = "api",
    edit_key: str | None = None,
) -> Block:
    """Create the block or give it a new value (and limit); a change adds a history version.

    Writing the same value and limit again is a no-op that keeps the version; so is an edit
    whose `edit_key` the block already holds."""
    validate_label(label)
    row = _locked(session, tenant_id, agent_id, label, user_id)
    if row is not None and _applied(session, row, edit_key):
        return _public(row)
    if char_limit is not None:
        limit = char_limit
    else:
        limit = row.char_limit if row is not None else default_limit
    _check(label, value, limit)
    if row is None:
        row = MemoryBlock(
            tenant_id=tenant_id,
            agent_id=agent_id,
            user_id=user_id or "",
            label=label,
            value=value,
            char_limit=limit,
            version=1,
        )
        session.add(row)
        session.flush()
    elif row.value == value and row.char_limit == limit:
        return _public(row)
    else:
        row.value, row.char_limit, row.version = value, limit, row.version + 1
        row.updated_at = session.scalar(select(func.now()))  # type: ignore[assignment]
    session.add(
        MemoryBlockVersion(
            block_id=row.id,
            version=row.version,
            tenant_id=tenant_id,
            value=value,
            char_limit=limit,
            author=author,
            edit_key=edit_key,
        )
    )
    session.flush()
    session.refresh(row)
    return _public(row)


def append_to_block(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    label: str,
    text: str,
    *,
    user_id: str | None = None,
    author: str = "agent",
    edit_key: str | None = None,
) -> Block:
    """Add a line to an existing block (the agent's `core_memory_append` tool); once per
    `edit_key`."""
    row = _locked(session, tenant_id, agent_id, label, user_id)
    if row is None:
        raise NotFound("block", label)
    if _applied(session, row, edit_key):
        return _public(row)
    value = f"{row.value}\n{text}" if row.value else text
    return set_block(
        session,
        tenant_id,
        agent_id,
        label,
        value,
        user_id=user_id,
        default_limit=row.char_limit,
        author=author,
        edit_key=edit_key,
    )


def replace_in_block(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    label: str,
    old: str,
    new: str,
    *,
    user_id: str | None = None,
    author: str = "agent",
    edit_key: str | None = None,
) -> Block:
    """Replace every occurrence of `old` (the agent's `core_memory_replace` tool); once per
    `edit_key` (a replace run again would no longer find `old`)."""
    row = _locked(session, tenant_id, agent_id, label, user_id)
    if row is None:
        raise NotFound("block", label)
    if _applied(session, row, edit_key):
        return _public(row)
    if not old or old not in row.value:
        raise UserError(f"text to replace not found in block {label!r}", param="old")
    return set_block(
        session,
        tenant_id,
        agent_id,
        label,
        row.value.replace(old, new),
        user_id=user_id,
        default_limit=row.char_limit,
        author=author,
        edit_key=edit_key,
    )


def get_block(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    label: str,
    *,
    user_id: str | None = None,
) -> Block:
    """One block, or `NotFound`."""
    row = session.scalars(
        select(MemoryBlock).where(
            MemoryBlock.tenant_id == tenant_id,
            MemoryBlock.agent_id == agent_id,
            MemoryBlock.user_id == (user_id or ""),
            MemoryBlock.label == label,
        )
    ).one_or_none()
    if row is None:
        raise NotFound("block", label)
    return _public(row)


def list_blocks(
    session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID, *, user_id: str | None = None
) -> list[Block]:
    """The agent's own blocks, plus that user's blocks when `user_id` is given; by label."""
    owners = ["", user_id] if user_id else [""]
    rows = session.scalars(
        select(MemoryBlock)
        .where(
            MemoryBlock.tenant_id == tenant_id,
            MemoryBlock.agent_id == agent_id,
            MemoryBlock.user_id.in_(owners),
        )
        .order_by(MemoryBlock.label, MemoryBlock.user_id)
    )
    return [_public(row) for row in rows]


def block_history(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    label: str,
    *,
    user_id: str | None = None,
    after: int = 0,
    limit: int | None = None,
) -> list[BlockVersion]:
    """The block's versions after version `after`, oldest first (at most `limit`), or
    `NotFound` when there is no such block."""
    query = (
        select(MemoryBlockVersion)
        .join(MemoryBlock, MemoryBlock.id == MemoryBlockVersion.block_id)
        .where(
            MemoryBlock.tenant_id == tenant_id,
            MemoryBlockVersion.tenant_id == tenant_id,
            MemoryBlock.agent_id == agent_id,
            MemoryBlock.user_id == (user_id or ""),
            MemoryBlock.label == label,
            MemoryBlockVersion.version > after,
        )
        .order_by(MemoryBlockVersion.version)
    )
    if limit is not None:
        query = query.limit(limit)
    history = [
        BlockVersion(
            version=v.version,
            value=v.value,
            char_limit=v.char_limit,
            author=v.author,
            created_at=v.created_at,
        )
        for v in session.execute(query).scalars()
    ]
    if not history:
        get_block(session, tenant_id, agent_id, label, user_id=user_id)  # NotFound if none
    return history


def delete_block(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    label: str,
    *,
    user_id: str | None = None,
) -> None:
    """Remove a block and its history, or `NotFound`."""
    deleted = session.scalar(
        delete(MemoryBlock)
        .where(
            MemoryBlock.tenant_id == tenant_id,
            MemoryBlock.agent_id == agent_id,
            MemoryBlock.user_id == (user_id or ""),
            MemoryBlock.label == label,
        )
        .returning(MemoryBlock.id)
    )
    if deleted is None:
        raise NotFound("block", label)


def render_blocks(blocks: list[Block]) -> str:
    """Blocks as the text placed at the top of an agent's context. A value cannot close its
    own tag and pose as another block: a `</label` in it is written `&lt;/label`."""
    parts = []
    for block in blocks:
        owner = f' user="{block.user_id}"' if block.user_id else ""
        closer = re.compile(rf"<(?=\s*/\s*{re.escape(block.label)})", re.I)
        parts.append(
            f'<{block.label}{owner} chars="{len(block.value)}/{block.char_limit}">\n'
            f"{closer.sub('&lt;', block.value)}\n</{block.label}>"
        )
    return "\n".join(parts)
