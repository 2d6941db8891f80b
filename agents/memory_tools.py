"""The memory tools: search and save long-term memories, edit core memory blocks.

They reach memory only through `ctx.services.memory`, scoped to the run's tenant, agent and
end user. A memory error the model can fix (empty text, a block over its limit, an unknown
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

from agents.context import ToolContext
from agents.errors import ToolError
from agents.tools import Tool, tool
from core.errors import NotFound, UserError
from memory.blocks import Block
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.service import MemoryStore

T = TypeVar("T")


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
    where = MemoryFilter(agent_id=ctx.agent_id, user_id=ctx.user_id)
    with _as_tool_error():
        hits = store.search(ctx.tenant_id, query, k=k, where=where)
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


def _on_block(ctx: ToolContext, label: str, edit: Callable[[str | None], Block]) -> Block:
    """Edit the user's block of that label if there is one, else the agent's own."""
    store = _store(ctx)
    with _as_tool_error():
        if ctx.user_id is not None:
            try:
                return edit(ctx.user_id)
            except NotFound:
                pass
        try:
            return edit(None)
        except NotFound:
            labels = sorted(
                {
                    b.label
                    for b in store.list_blocks(ctx.tenant_id, ctx.agent_id, user_id=ctx.user_id)
                }
            )
            raise ToolError(
                f"no core memory block {label!r}; blocks: {', '.join(labels) or 'none'}"
            ) from None


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
    )
    return f"replaced; block {label!r} now holds {len(block.value)}/{block.char_limit} characters"


MEMORY_TOOLS: tuple[Tool, ...] = tuple(
    tool(function, idempotent=True)
    for function in (memory_search, memory_save, core_memory_append, core_memory_replace)
)
"""The memory tools, ready to register."""
