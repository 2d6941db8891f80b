"""Core memory block shapes: BlockPut, BlockQuery, BlockHistoryQuery, BlockPublic,
BlockVersionPublic."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from api.schemas.common import Inbound, decode_position
from api.schemas.memories import UserId
from memory.blocks import MAX_BLOCK_LIMIT, Block, BlockVersion

LabelPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="1-64 lower-case letters, digits or '_', starting with a letter.",
    ),
]
"""The `{label}` of a block path: the label rule of memory/blocks.py (422 otherwise), checked
here so that reads of a malformed label answer like writes."""


class BlockPut(Inbound):
    """Body of PUT /v1/agents/{id}/blocks/{label}: create or replace the block. A value over
    the block's character limit is 413 and changes nothing."""

    value: str = Field(description="The block's whole new text.")
    char_limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BLOCK_LIMIT,
        description="New character limit; null keeps the block's (new blocks: the default).",
    )
    user_id: UserId | None = Field(
        default=None, description="The end user the block is about; null: the agent's own."
    )


class BlockQuery(Inbound):
    """Query of the block reads and delete; any other parameter is refused (422)."""

    user_id: UserId | None = Field(
        default=None,
        description="The end user's block (listing: the agent's blocks plus this user's).",
    )


MAX_BLOCK_VERSION = 2**31 - 1
"""The largest version a block can have (a 4-byte integer column): a larger cursor is 422."""


class BlockHistoryQuery(BlockQuery):
    """Query of GET .../blocks/{label}/history: a page of versions, oldest first."""

    limit: int = Field(default=50, ge=1, le=100, description="Versions per page (1-100).")
    cursor: str | None = Field(
        default=None, max_length=512, description="`next_cursor` of the previous page."
    )

    def after(self) -> int:
        """The version the page starts after (0: the first page); 422 past the largest."""
        return decode_position(self.cursor, MAX_BLOCK_VERSION) if self.cursor is not None else 0


class BlockPublic(BaseModel):
    """A core memory block as the API returns it."""

    label: str
    value: str
    char_limit: int
    version: int
    user_id: str | None
    updated_at: datetime

    @classmethod
    def of(cls, block: Block) -> BlockPublic:
        """From the memory layer's block."""
        return cls(
            label=block.label,
            value=block.value,
            char_limit=block.char_limit,
            version=block.version,
            user_id=block.user_id,
            updated_at=block.updated_at,
        )


class BlockVersionPublic(BaseModel):
    """One entry of a block's history."""

    version: int
    value: str
    char_limit: int
    author: str
    created_at: datetime

    @classmethod
    def of(cls, entry: BlockVersion) -> BlockVersionPublic:
        """From the memory layer's version."""
        return cls(
            version=entry.version,
            value=entry.value,
            char_limit=entry.char_limit,
            author=entry.author,
            created_at=entry.created_at,
        )
