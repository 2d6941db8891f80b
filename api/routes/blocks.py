"""Core memory blocks of an agent (its own, or per end user with `user_id`): list, read,
create or replace, delete, history. Tenant-scoped; another tenant's agents are 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import MemoryDep, OwnedAgentId, PrincipalDep
from api.schemas.blocks import (
    BlockHistoryQuery,
    BlockPublic,
    BlockPut,
    BlockQuery,
    BlockVersionPublic,
    LabelPath,
)
from api.schemas.common import Page, keyset_page
from core.web.errors import error_responses
from memory.blocks import BlockVersion

router = APIRouter(
    prefix="/v1/agents/{agent_id}/blocks",
    tags=["blocks"],
    responses=error_responses(401, 404, 422, 429),
)

BlockParams = Annotated[BlockQuery, Query()]


@router.get("")
def list_blocks(
    principal: PrincipalDep, agent_id: OwnedAgentId, params: BlockParams, memory: MemoryDep
) -> Page[BlockPublic]:
    """The agent's own blocks, plus the end user's with `user_id`; by label (one page)."""
    found = memory.list_blocks(principal.tenant_id, agent_id, user_id=params.user_id)
    return Page[BlockPublic](data=[BlockPublic.of(block) for block in found])


@router.get("/{label}")
def get_block(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    label: LabelPath,
    params: BlockParams,
    memory: MemoryDep,
) -> BlockPublic:
    """One block: the agent's own, or the end user's with `user_id`."""
    block = memory.get_block(principal.tenant_id, agent_id, label, user_id=params.user_id)
    return BlockPublic.of(block)


@router.put("/{label}", responses=error_responses(400, 413))
def put_block(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    label: LabelPath,
    body: BlockPut,
    memory: MemoryDep,
) -> BlockPublic:
    """Create the block or replace its value (and limit); a change adds a history version,
    writing the same value again adds none. Over the character limit: 413, nothing changes."""
    block = memory.set_block(
        principal.tenant_id,
        agent_id,
        label,
        body.value,
        user_id=body.user_id,
        char_limit=body.char_limit,
        author="api",
    )
    return BlockPublic.of(block)


@router.delete("/{label}", status_code=status.HTTP_204_NO_CONTENT)
def delete_block(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    label: LabelPath,
    params: BlockParams,
    memory: MemoryDep,
) -> Response:
    """Delete a block with its history."""
    memory.delete_block(principal.tenant_id, agent_id, label, user_id=params.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{label}/history")
def block_history(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    label: LabelPath,
    params: Annotated[BlockHistoryQuery, Query()],
    memory: MemoryDep,
) -> Page[BlockVersionPublic]:
    """A block's versions, oldest first, `limit` per page; `next_cursor` resumes after the
    last version of the page."""
    history = memory.block_history(
        principal.tenant_id,
        agent_id,
        label,
        user_id=params.user_id,
        after=params.after(),
        limit=params.limit + 1,
    )
    return keyset_page(history, params.limit, _by_version, BlockVersionPublic.of)


def _by_version(entry: BlockVersion) -> int:
    return entry.version
