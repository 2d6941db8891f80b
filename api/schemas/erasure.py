"""Answers of the erasing routes: Erased (an end user's data) and SessionDeleted, with the
count of each kind of row that went."""

from __future__ import annotations

import dataclasses

from pydantic import BaseModel, Field

from agents.erasure import ErasureReport


class ErasedCounts(BaseModel):
    """Rows removed, per kind (batch items: redacted in place, or cancelled)."""

    memories: int
    blocks: int
    block_versions: int
    sessions: int
    messages: int
    runs: int
    run_steps: int
    tool_calls: int
    run_events: int
    batch_items: int
    webhook_deliveries: int
    schedules: int

    @classmethod
    def of(cls, report: ErasureReport) -> ErasedCounts:
        """From the agents layer's report."""
        return cls(**dataclasses.asdict(report))


class Erased(BaseModel):
    """Answer of an end user's erase."""

    deleted: int = Field(description="Memories plus core blocks (the count older clients read).")
    erased: ErasedCounts

    @classmethod
    def of(cls, report: ErasureReport) -> Erased:
        """From the agents layer's report."""
        return cls(deleted=report.memories + report.blocks, erased=ErasedCounts.of(report))


class SessionDeleted(BaseModel):
    """Answer of a session's deletion."""

    erased: ErasedCounts
