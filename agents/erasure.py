"""Erasing an end user's data, or deleting one session with everything under it, each in one
transaction, with a tombstone that keeps writes begun earlier from bringing it back
(memory.erasure has the rules and the locks).

What holds an end user's text, and what becomes of it:

- their sessions (user id, summary, metadata), with each session's messages, runs (input,
  output, error, metadata, idempotency key), run steps (`context` holds the prompt with the
  recalled memories, `output` the model's answer), tool calls (arguments, results) and run
  events: deleted;
- every memory about the user or written in one of those sessions, the user's core blocks
  with their histories: deleted;
- the schedules that run as them (input, user id): deleted, the runs they made with the
  sessions above;
- their batch items: redacted in place (input, user id, metadata and output cleared, error
  reduced to its type), because a batch's positions, progress counts and usage must stay
  whole; an item not yet finished is cancelled.

A run still in flight loses its rows: its worker stops at its next write (the lease it holds
is gone) and whatever it would still store about the user is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, case, delete, func, select, update
from sqlalchemy.orm import Session

from agents import agent_store
from agents.batches import store as batch_store
from agents.schedules.tables import ScheduleRow
from agents.tables import (
    BatchItemRow,
    BatchRow,
    EventRow,
    MessageRow,
    RunRow,
    SessionRow,
    StepRow,
    ToolCallRow,
)
from agents.webhooks.tables import DeliveryRow
from core.errors import NotFound
from memory import erasure

OPEN_ITEM_STATUSES = ("pending", "queued")


@dataclass(frozen=True)
class ErasureReport:
    """How many rows of each kind an erase removed (batch items: redacted)."""

    memories: int = 0
    """Long-term memories."""
    blocks: int = 0
    """Core memory blocks."""
    block_versions: int = 0
    """Versions of those blocks."""
    sessions: int = 0
    """Sessions."""
    messages: int = 0
    """Session messages."""
    runs: int = 0
    """Runs."""
    run_steps: int = 0
    """Steps of those runs."""
    tool_calls: int = 0
    """Tool calls of those runs."""
    run_events: int = 0
    """Events of those runs."""
    batch_items: int = 0
    """Batch items redacted in place (or, deleting a session, cancelled)."""
    webhook_deliveries: int = 0
    """Webhook deliveries of those runs (their payloads hold the runs' output)."""
    schedules: int = 0
    """Schedules that ran the agent as the user (their input is the user's message)."""


def _rows(session: Session, statement: Executable) -> int:
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def _delete_sessions(
    session: Session, tenant_id: uuid.UUID, session_ids: Sequence[uuid.UUID]
) -> dict[str, int]:
    """Delete sessions with their messages, runs, steps, tool calls and events, children first
    so that each kind is counted."""
    if not session_ids:
        return {}
    ids = list(session_ids)
    runs = select(RunRow.id).where(RunRow.tenant_id == tenant_id, RunRow.session_id.in_(ids))
    counts = {
        "run_events": _rows(session, delete(EventRow).where(EventRow.run_id.in_(runs))),
        "webhook_deliveries": _rows(
            session, delete(DeliveryRow).where(DeliveryRow.run_id.in_(runs))
        ),
        "tool_calls": _rows(session, delete(ToolCallRow).where(ToolCallRow.run_id.in_(runs))),
        "run_steps": _rows(session, delete(StepRow).where(StepRow.run_id.in_(runs))),
    }
    counts["messages"] = _rows(
        session,
        delete(MessageRow).where(MessageRow.tenant_id == tenant_id, MessageRow.session_id.in_(ids)),
    )
    counts["runs"] = _rows(
        session, delete(RunRow).where(RunRow.tenant_id == tenant_id, RunRow.session_id.in_(ids))
    )
    counts["sessions"] = _rows(
        session, delete(SessionRow).where(SessionRow.tenant_id == tenant_id, SessionRow.id.in_(ids))
    )
    return counts


def _lock_batches(session: Session, batch_ids: Any) -> list[BatchRow]:
    """Lock batches before any erasure lock: dispatch holds a batch's row lock when it creates
    an item's session (which takes the user's lock), so this order cannot deadlock with it."""
    query = select(BatchRow).where(BatchRow.id.in_(batch_ids)).order_by(BatchRow.id)
    return list(session.scalars(query.with_for_update()))


def _finish(session: Session, batches: Sequence[BatchRow]) -> None:
    for batch in batches:
        batch_store.finish_if_done(session, batch)


def erase_user(
    session: Session, tenant_id: uuid.UUID, user_id: str, *, agent_id: uuid.UUID | None = None
) -> ErasureReport:
    """Erase everything stored about one end user: of one agent, or of all the tenant's agents
    with `agent_id` None. Runs in the caller's transaction; an unknown user erases nothing
    (and still leaves a tombstone)."""
    items = [BatchItemRow.tenant_id == tenant_id, BatchItemRow.user_id == user_id]
    if agent_id is not None:
        items.append(
            BatchItemRow.batch_id.in_(select(BatchRow.id).where(BatchRow.agent_id == agent_id))
        )
    batches = _lock_batches(session, select(BatchItemRow.batch_id).where(*items))
    erasure.record_user_erasure(session, tenant_id, user_id, agent_id)
    chats = [SessionRow.tenant_id == tenant_id, SessionRow.user_id == user_id]
    if agent_id is not None:
        chats.append(SessionRow.agent_id == agent_id)
    # Locked: a message being posted to one of them commits first, and its run is erased too.
    session_ids = list(session.scalars(select(SessionRow.id).where(*chats).with_for_update()))
    counts = _delete_sessions(session, tenant_id, session_ids)
    counts["batch_items"] = _rows(
        session,
        update(BatchItemRow)
        .where(*items)
        .values(
            input="",
            user_id=None,
            metadata_={},
            output=None,
            error=case(
                (
                    BatchItemRow.status.in_(OPEN_ITEM_STATUSES) | BatchItemRow.error.is_not(None),
                    func.jsonb_build_object(
                        "type",
                        func.coalesce(BatchItemRow.error["type"].astext, "erased"),
                        "message",
                        "erased with the end user's data",
                    ),
                ),
                else_=None,
            ),
            status=case(
                (BatchItemRow.status.in_(OPEN_ITEM_STATUSES), "cancelled"),
                else_=BatchItemRow.status,
            ),
            finished_at=func.coalesce(BatchItemRow.finished_at, func.now()),
        ),
    )
    schedules = [ScheduleRow.tenant_id == tenant_id, ScheduleRow.user_id == user_id]
    if agent_id is not None:
        schedules.append(ScheduleRow.agent_id == agent_id)
    counts["schedules"] = _rows(session, delete(ScheduleRow).where(*schedules))
    memory = erasure.erase_user_memories(session, tenant_id, user_id, agent_id, session_ids)
    _finish(session, batches)
    return ErasureReport(
        memories=memory.memories,
        blocks=memory.blocks,
        block_versions=memory.block_versions,
        **counts,
    )


def delete_session(session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ErasureReport:
    """Delete one session with its messages, runs (and their steps, tool calls and events) and
    the memories written in it, in the caller's transaction; NotFound for an unknown one. A
    batch item whose run it held is cancelled. The user's other data stays."""
    agent_store.get_session(session, tenant_id, session_id)
    runs = select(RunRow.id).where(RunRow.tenant_id == tenant_id, RunRow.session_id == session_id)
    batches = _lock_batches(
        session, select(RunRow.batch_id).where(RunRow.id.in_(runs), RunRow.batch_id.is_not(None))
    )
    erasure.record_session_erasure(session, tenant_id, session_id)
    locked = select(SessionRow.id).where(SessionRow.id == session_id).with_for_update()
    if session.scalar(locked) is None:  # deleted meanwhile: roll the tombstone back with it
        raise NotFound("session", str(session_id))
    items = _rows(
        session,
        update(BatchItemRow)
        .where(
            BatchItemRow.tenant_id == tenant_id,
            BatchItemRow.run_id.in_(runs),
            BatchItemRow.status.in_(OPEN_ITEM_STATUSES),
        )
        .values(
            status="cancelled",
            error={"type": "deleted", "message": "the item's session was deleted"},
            finished_at=func.now(),
        ),
    )
    counts = _delete_sessions(session, tenant_id, [session_id])
    memories = erasure.erase_session_memories(session, tenant_id, session_id)
    _finish(session, batches)
    return ErasureReport(memories=memories, batch_items=items, **counts)
