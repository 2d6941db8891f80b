"""The memory tools: search and save long-term memories, edit core memory blocks.

They reach memory only through `ctx.services.memory`, scoped to the run's tenant, agent and
end user: a session's search sees that user's memories (without a user, only memories of
nobody), and its block edits write that user's own blocks; the agent-wide blocks every user
sees are read-only to tools unless the agent's memory policy says `shared_blocks_writable`
(see `_on_block`). A memory error the model can fix (empty text, a block over its limit, an unknown
label) comes back to it as a tool error with the reason.

All four are idempotent, so a call a dead worker may have started is simply run again: search
reads; save deduplicates (the same content again updates the memory it made); the block edits
pass the call's idempotency key, and a block that already holds an edit of that key is left
as it is (memory.blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from pydantic import Field

from agents import telemetry
from agents.errors import ToolError
from agents.tools.context import ToolContext
from agents.tools.registry import Tool, tool
from core.errors import NotFound, UserError
from memory.blocks import Block
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.store import MemoryStore

T = TypeVar("T")

MAX_USER_BLOCKS = 16
"""Most blocks of one user the tools create: each is in every prompt of that user."""


def _store(ctx: ToolContext) -> MemoryStore:
    if ctx.services.memory is None:
        raise ToolError("memory is not available in this run")
    return ctx.services.memory


@contextmanager
def _as_tool_error() -> Iterator[None]:
    try:
        yield
    except UserError as exc:
        raise ToolError(exc.message) from None


def memory_search(
    ctx: ToolContext,
    query: str,
    k: Annotated[int, Field(ge=1, le=20)] = 5,
) -> str:
    """Search your long-term memory of this user for anything related to the query.

    Args:
        query: What to look for, in a few words.
        k: How many memories to return.
    """
    store = _store(ctx)
    where = MemoryFilter.seen_by(ctx.agent_id, ctx.user_id)
    with _as_tool_error(), telemetry.memory_search(k, "tool") as span:
        hits = store.search(ctx.tenant_id, query, k=k, where=where)
        span.set_attribute("agentmill.memory.results", len(hits))
    if not hits:
        return "no memories found"
    return "\n".join(
        f"{n}. [{hit.memory.created_at:%Y-%m-%d}] {hit.memory.content}"
        for n, hit in enumerate(hits, start=1)
    )


def memory_save(
    ctx: ToolContext,
    content: str,
    importance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7,
) -> str:
    """Save a durable fact about the user or the conversation to long-term memory.

    Args:
        content: The fact, as one self-contained sentence.
        importance: 0 (trivia) to 1 (essential).
    """
    store = _store(ctx)
    memory = NewMemory(
        agent_id=ctx.agent_id,
        content=content,
        user_id=ctx.user_id,
        session_id=ctx.session_id,
        kind="fact",
        importance=importance,
        source_run_id=ctx.run_id,
        metadata={"source": "memory_save"},
    )
    with _as_tool_error():
        result = store.add(ctx.tenant_id, memory)
    return "already known (updated the existing memory)" if result.deduplicated else "saved"


def _shared(ctx: ToolContext, store: MemoryStore, label: str) -> Block | None:
    try:
        return store.get_block(ctx.tenant_id, ctx.agent_id, label)
    except NotFound:
        return None


def _unknown(ctx: ToolContext, store: MemoryStore, label: str) -> ToolError:
    labels = sorted(
        {b.label for b in store.list_blocks(ctx.tenant_id, ctx.agent_id, user_id=ctx.user_id)}
    )
    return ToolError(f"no core memory block {label!r}; blocks: {', '.join(labels) or 'none'}")


def _on_block(
    ctx: ToolContext, label: str, edit: Callable[[str | None], Block], *, create: str | None
) -> Block:
    """Apply `edit` (given the owner: a user id, or None for the agent's own block) to the
    block this session's tools may write.

    With a user: that user's block of the label; when they have none yet, the agent-wide one
    if the agent lets tools write it (`shared_blocks_writable`), else a new block of the
    user's own holding `create` (an append's text; a replace has nothing to work on), with the
    agent-wide block's limit. Without a user: the agent-wide block, only when writable. So no
    end user's words reach another user's prompt unless the agent opted in."""
    store = _store(ctx)
    with _as_tool_error():
        if ctx.user_id is None:
            if not ctx.shared_blocks_writable:
                raise ToolError(
                    "core memory is read-only in this session: it has no end user, and this "
                    "agent's shared blocks are not writable by tools"
                )
            try:
                return edit(None)
            except NotFound:
                raise _unknown(ctx, store, label) from None
        try:
            return edit(ctx.user_id)
        except NotFound:
            pass
        shared = _shared(ctx, store, label)
        if shared is not None and ctx.shared_blocks_writable:
            return edit(None)
        if create is None:
            if shared is None:
                raise _unknown(ctx, store, label)
            raise ToolError(
                f"block {label!r} is shared by every user of this agent and read-only to "
                f"tools; this user has no {label!r} block of their own yet: add to it with "
                "core_memory_append"
            )
        visible = store.list_blocks(ctx.tenant_id, ctx.agent_id, user_id=ctx.user_id)
        if sum(b.user_id is not None for b in visible) >= MAX_USER_BLOCKS:
            raise ToolError(
                f"this user already has {MAX_USER_BLOCKS} core memory blocks; add to one of "
                "those instead"
            )
        return store.set_block(
            ctx.tenant_id,
            ctx.agent_id,
            label,
            create,
            user_id=ctx.user_id,
            char_limit=shared.char_limit if shared is not None else None,
            author="agent",
            edit_key=ctx.idempotency_key,  # a re-run's append then finds its edit applied
        )


def core_memory_append(ctx: ToolContext, label: str, content: str) -> str:
    """Append a line to one of your core memory blocks (always shown in your context).

    Args:
        label: The block, e.g. human or persona.
        content: The text to add.
    """
    store = _store(ctx)
    block = _on_block(
        ctx,
        label,
        lambda user: store.append_to_block(
            ctx.tenant_id,
            ctx.agent_id,
            label,
            content,
            user_id=user,
            author="agent",
            edit_key=ctx.idempotency_key,
        ),
        create=content,
    )
    return f"appended; block {label!r} now holds {len(block.value)}/{block.char_limit} characters"


def core_memory_replace(ctx: ToolContext, label: str, old: str, new: str) -> str:
    """Replace text in one of your core memory blocks; an empty `new` deletes `old`.

    Args:
        label: The block, e.g. human or persona.
        old: The exact text to replace.
        new: The text to put in its place.
    """
    store = _store(ctx)
    block = _on_block(
        ctx,
        label,
        lambda user: store.replace_in_block(
            ctx.tenant_id,
            ctx.agent_id,
            label,
            old,
            new,
            user_id=user,
            author="agent",
            edit_key=ctx.idempotency_key,
        ),
        create=None,
    )
    return f"replaced; block {label!r} now holds {len(block.value)}/{block.char_limit} characters"


MEMORY_TOOLS: tuple[Tool, ...] = tuple(
    tool(function, idempotent=True)
    for function in (memory_search, memory_save, core_memory_append, core_memory_replace)
)
"""The memory tools, ready to register."""
