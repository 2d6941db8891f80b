"""`client.blocks`: an agent's core memory blocks (its own, or an end user's with `user_id`):
list, get, set, delete, history (every page)."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from agentmill._http import HTTP, AsyncHTTP, Call
from agentmill.memory_models import Block, BlockVersion
from agentmill.models import Page


def block_call(
    method: str,
    agent_id: uuid.UUID | str,
    label: str | None = None,
    *,
    user_id: str | None = None,
) -> Call:
    """A request on the agent's blocks (`label` None) or on one block, for `user_id`'s."""
    path = f"/v1/agents/{agent_id}/blocks"
    if label is not None:
        path = f"{path}/{label}"
    params = {"user_id": user_id} if user_id is not None else None
    return Call(method, path, params=params)


def set_call(
    agent_id: uuid.UUID | str,
    label: str,
    value: str,
    *,
    char_limit: int | None,
    user_id: str | None,
) -> Call:
    """PUT /v1/agents/{id}/blocks/{label}."""
    body: dict[str, Any] = {"value": value}
    if char_limit is not None:
        body["char_limit"] = char_limit
    if user_id is not None:
        body["user_id"] = user_id
    return Call("PUT", f"/v1/agents/{agent_id}/blocks/{label}", json=body)


def history_call(
    agent_id: uuid.UUID | str,
    label: str,
    *,
    user_id: str | None,
    limit: int,
    cursor: str | None,
) -> Call:
    """GET /v1/agents/{id}/blocks/{label}/history, one page, oldest first."""
    params: dict[str, str | int] = {"limit": limit}
    if user_id is not None:
        params["user_id"] = user_id
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", f"/v1/agents/{agent_id}/blocks/{label}/history", params=params)


class Blocks:
    """Core memory blocks: labelled texts always at the top of an agent's context."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def list(
        self, agent_id: uuid.UUID | str, *, user_id: str | None = None
    ) -> builtins.list[Block]:
        """The agent's own blocks, plus the end user's with `user_id`, by label."""
        response = self._http.send(block_call("GET", agent_id, user_id=user_id))
        return Page[Block].model_validate(response.json()).data

    def get(self, agent_id: uuid.UUID | str, label: str, *, user_id: str | None = None) -> Block:
        """One block: the agent's own, or the end user's with `user_id`."""
        response = self._http.send(block_call("GET", agent_id, label, user_id=user_id))
        return Block.model_validate(response.json())

    def set(
        self,
        agent_id: uuid.UUID | str,
        label: str,
        value: str,
        *,
        char_limit: int | None = None,
        user_id: str | None = None,
    ) -> Block:
        """Create the block or replace its whole value (and limit, if given); a change adds a
        version, the same value again adds none. Over the limit: `PayloadTooLargeError`."""
        call = set_call(agent_id, label, value, char_limit=char_limit, user_id=user_id)
        return Block.model_validate(self._http.send(call).json())

    def delete(self, agent_id: uuid.UUID | str, label: str, *, user_id: str | None = None) -> None:
        """Delete a block with its history."""
        self._http.send(block_call("DELETE", agent_id, label, user_id=user_id))

    def history_page(
        self,
        agent_id: uuid.UUID | str,
        label: str,
        *,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[BlockVersion]:
        """One page of a block's versions, oldest first."""
        call = history_call(agent_id, label, user_id=user_id, limit=limit, cursor=cursor)
        return Page[BlockVersion].model_validate(self._http.send(call).json())

    def history(
        self,
        agent_id: uuid.UUID | str,
        label: str,
        *,
        user_id: str | None = None,
        limit: int = 50,
    ) -> Iterator[BlockVersion]:
        """Every version of a block, oldest first, fetched `limit` (1-100) per request."""
        cursor: str | None = None
        while True:
            page = self.history_page(agent_id, label, user_id=user_id, limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncBlocks:
    """Core memory blocks (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def list(
        self, agent_id: uuid.UUID | str, *, user_id: str | None = None
    ) -> builtins.list[Block]:
        """The agent's own blocks, plus the end user's with `user_id`, by label."""
        response = await self._http.send(block_call("GET", agent_id, user_id=user_id))
        return Page[Block].model_validate(response.json()).data

    async def get(
        self, agent_id: uuid.UUID | str, label: str, *, user_id: str | None = None
    ) -> Block:
        """One block: the agent's own, or the end user's with `user_id`."""
        response = await self._http.send(block_call("GET", agent_id, label, user_id=user_id))
        return Block.model_validate(response.json())

    async def set(
        self,
        agent_id: uuid.UUID | str,
        label: str,
        value: str,
        *,
        char_limit: int | None = None,
        user_id: str | None = None,
    ) -> Block:
        """Create the block or replace its whole value (see `Blocks.set`)."""
        call = set_call(agent_id, label, value, char_limit=char_limit, user_id=user_id)
        return Block.model_validate((await self._http.send(call)).json())

    async def delete(
        self, agent_id: uuid.UUID | str, label: str, *, user_id: str | None = None
    ) -> None:
        """Delete a block with its history."""
        await self._http.send(block_call("DELETE", agent_id, label, user_id=user_id))

    async def history_page(
        self,
        agent_id: uuid.UUID | str,
        label: str,
        *,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[BlockVersion]:
        """One page of a block's versions, oldest first."""
        call = history_call(agent_id, label, user_id=user_id, limit=limit, cursor=cursor)
        return Page[BlockVersion].model_validate((await self._http.send(call)).json())

    async def history(
        self,
        agent_id: uuid.UUID | str,
        label: str,
        *,
        user_id: str | None = None,
        limit: int = 50,
    ) -> AsyncIterator[BlockVersion]:
        """Every version of a block, oldest first, fetched `limit` (1-100) per request."""
        cursor: str | None = None
        while True:
            page = await self.history_page(
                agent_id, label, user_id=user_id, limit=limit, cursor=cursor
            )
            for version in page.data:
                yield version
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
