"""Response models of the erasing calls (mirrors of the server's api/schemas/erasure.py): the
rows a session's deletion or an end user's erase removed, per kind."""

from __future__ import annotations

from pydantic import BaseModel


class ErasedCounts(BaseModel):
    """Rows removed, per kind."""

    memories: int
    blocks: int
    """Core blocks."""
    block_versions: int
    """Entries of those blocks' histories."""
    sessions: int
    messages: int
    runs: int
    run_steps: int
    tool_calls: int
    run_events: int
    batch_items: int
    """Batch items redacted in place (or cancelled, if not yet run): a batch stays whole."""
    webhook_deliveries: int = 0
    """Webhook deliveries of the runs erased."""
    schedules: int = 0
    """Schedules that ran as the user."""


class Erased(BaseModel):
    """What an end user's erase removed."""

    deleted: int
    """Memories plus core blocks (what `Memories.erase_user` returns)."""
    erased: ErasedCounts
