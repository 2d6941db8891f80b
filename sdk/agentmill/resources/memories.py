"""`client.memories`: add, search, list (every page), get, update, delete, erase an end
user's data."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.erasure_models import Erased
from agentmill.memory_models import Memory, MemoryHit, MemoryKind, MemoryWritten
from agentmill.models import Page


class MemoryFilters(TypedDict, total=False):
    """What searches and lists can be narrowed to; every filter given must hold."""

    user_id: str
    """Only this end user's memories."""
    session_id: uuid.UUID | str
    """Only memories of this session."""
    kind: MemoryKind | Sequence[MemoryKind]
    """Only this kind, or these kinds."""
    created_after: datetime
    """created_at at or after this (timezone-aware)."""
    created_before: datetime
    """created_at before this (timezone-aware)."""
    metadata: dict[str, Any]
    """An object the memory's metadata must contain."""


def filter_params(filters: MemoryFilters) -> dict[str, str | int | Sequence[str]]:
    """The query parameters of `filters`."""
    params: dict[str, str | int | Sequence[str]] = {}
    if "user_id" in filters:
        params["user_id"] = filters["user_id"]
    if "session_id" in filters:
        params["session_id"] = str(filters["session_id"])
    if "kind" in filters:
        kind = filters["kind"]
        params["kind"] = [kind] if isinstance(kind, str) else list(kind)
    if "created_after" in filters:
        params["created_after"] = filters["created_after"].isoformat()
    if "created_before" in filters:
        params["created_before"] = filters["created_before"].isoformat()
    if "metadata" in filters:
        params["metadata"] = json.dumps(filters["metadata"], separators=(",", ":"))
    return params


def add_call(
    agent_id: uuid.UUID | str,
    content: str,
    *,
    user_id: str | None,
    session_id: uuid.UUID | str | None,
    kind: MemoryKind | None,
    importance: float | None,
    metadata: dict[str, Any] | None,
) -> Call:
    """POST /v1/agents/{id}/memories with the fields given."""
    body: dict[str, Any] = {"content": content}
    if user_id is not None:
        body["user_id"] = user_id
    if session_id is not None:
        body["session_id"] = str(session_id)
    if kind is not None:
        body["kind"] = kind
    if importance is not None:
        body["importance"] = importance
    if metadata is not None:
        body["metadata"] = metadata
    return Call("POST", f"/v1/agents/{agent_id}/memories", json=body, headers=new_key())


def search_call(
    agent_id: uuid.UUID | str, query: str, k: int | None, filters: MemoryFilters
) -> Call:
    """GET /v1/agents/{id}/memories with a query."""
    params = {"query": query, **filter_params(filters)}
    if k is not None:
        params["k"] = k
    return Call("GET", f"/v1/agents/{agent_id}/memories", params=params)


def page_call(
    agent_id: uuid.UUID | str, limit: int, cursor: str | None, filters: MemoryFilters
) -> Call:
    """GET /v1/agents/{id}/memories without a query: one page, newest first."""
    params = {"limit": limit, **filter_params(filters)}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", f"/v1/agents/{agent_id}/memories", params=params)


def update_call(
    memory_id: uuid.UUID | str,
    *,
    content: str | None,
    importance: float | None,
    metadata: dict[str, Any] | None,
) -> Call:
    """PATCH /v1/memories/{id} with only the fields given (none: the server's 422)."""
    body: dict[str, Any] = {}
    if content is not None:
        body["content"] = content
    if importance is not None:
        body["importance"] = importance
    if metadata is not None:
        body["metadata"] = metadata
    return Call("PATCH", f"/v1/memories/{memory_id}", json=body)


SHADOWED_SUFFIX = "/memories"
"""The server reads `/users/{user_id}` with a user id ending in this as the older
`/users/{user_id}/memories` form of another user: such an id goes through that form."""


def erase_call(user_id: str, agent_id: uuid.UUID | str | None) -> Call:
    """DELETE everything stored about the end user: of one agent, or of every agent."""
    user = quote(user_id, safe="")  # a user id may hold "/", "?" or "#"
    if user_id.endswith(SHADOWED_SUFFIX):
        user = f"{user}/memories"
    if agent_id is None:
        return Call("DELETE", f"/v1/users/{user}")
    return Call("DELETE", f"/v1/agents/{agent_id}/users/{user}")


class Memories:
    """Agents' long-term memories: short texts searched by meaning and words together."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def add(
        self,
        agent_id: uuid.UUID | str,
        content: str,
        *,
        user_id: str | None = None,
        session_id: uuid.UUID | str | None = None,
        kind: MemoryKind | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> MemoryWritten:
        """Store a memory of the agent, or update the near-duplicate it already holds
        (`deduplicated`). Sent with an Idempotency-Key: a retry gets the first answer."""
        call = add_call(
            agent_id,
            content,
            user_id=user_id,
            session_id=session_id,
            kind=kind,
            importance=importance,
            metadata=metadata,
        )
        return MemoryWritten.model_validate(self._http.send(call).json())

    def search(
        self,
        agent_id: uuid.UUID | str,
        query: str,
        *,
        k: int | None = None,
        **filters: Unpack[MemoryFilters],
    ) -> builtins.list[MemoryHit]:
        """The `k` memories (server default 10, at most 50) that best answer `query`, best
        first."""
        response = self._http.send(search_call(agent_id, query, k, filters))
        return Page[MemoryHit].model_validate(response.json()).data

    def page(
        self,
        agent_id: uuid.UUID | str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        **filters: Unpack[MemoryFilters],
    ) -> Page[Memory]:
        """One page of the agent's memories, newest first."""
        response = self._http.send(page_call(agent_id, limit, cursor, filters))
        return Page[Memory].model_validate(response.json())

    def list(
        self, agent_id: uuid.UUID | str, *, limit: int = 50, **filters: Unpack[MemoryFilters]
    ) -> Iterator[Memory]:
        """Every memory of the agent, newest first, fetched `limit` per request."""
        cursor: str | None = None
        while True:
            page = self.page(agent_id, limit=limit, cursor=cursor, **filters)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, memory_id: uuid.UUID | str) -> Memory:
        """One memory."""
        response = self._http.send(Call("GET", f"/v1/memories/{memory_id}"))
        return Memory.model_validate(response.json())

    def update(
        self,
        memory_id: uuid.UUID | str,
        *,
        content: str | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Change a memory: new `content` (embedded again), `importance` (0..1) or `metadata`
        (replaced whole); what is not given stays. `ConflictError` if another memory of its
        scope already holds that content, `UnprocessableEntityError` if nothing is given. Not
        retried after it reached the server."""
        call = update_call(memory_id, content=content, importance=importance, metadata=metadata)
        return Memory.model_validate(self._http.send(call).json())

    def delete(self, memory_id: uuid.UUID | str) -> None:
        """Delete one memory."""
        self._http.send(Call("DELETE", f"/v1/memories/{memory_id}"))

    def erase(self, user_id: str, *, agent_id: uuid.UUID | str | None = None) -> Erased:
        """Erase everything stored about an end user, of every agent of the tenant or of
        `agent_id` only, in one transaction: their sessions (messages, runs, steps, tool
        calls, events), memories, core blocks with their history; their batch items are
        redacted. Returns how many rows of each kind went."""
        return Erased.model_validate(self._http.send(erase_call(user_id, agent_id)).json())

    def erase_user(self, user_id: str, *, agent_id: uuid.UUID | str | None = None) -> int:
        """Erase everything stored about an end user (as `erase`). Returns how many memories
        and core blocks went; `erase` gives the count of every kind."""
        return self.erase(user_id, agent_id=agent_id).deleted


class AsyncMemories:
    """Agents' long-term memories (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def add(
        self,
        agent_id: uuid.UUID | str,
        content: str,
        *,
        user_id: str | None = None,
        session_id: uuid.UUID | str | None = None,
        kind: MemoryKind | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> MemoryWritten:
        """Store a memory of the agent (see `Memories.add`)."""
        call = add_call(
            agent_id,
            content,
            user_id=user_id,
            session_id=session_id,
            kind=kind,
            importance=importance,
            metadata=metadata,
        )
        return MemoryWritten.model_validate((await self._http.send(call)).json())

    async def search(
        self,
        agent_id: uuid.UUID | str,
        query: str,
        *,
        k: int | None = None,
        **filters: Unpack[MemoryFilters],
    ) -> builtins.list[MemoryHit]:
        """The `k` memories that best answer `query`, best first."""
        response = await self._http.send(search_call(agent_id, query, k, filters))
        return Page[MemoryHit].model_validate(response.json()).data

    async def page(
        self,
        agent_id: uuid.UUID | str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        **filters: Unpack[MemoryFilters],
    ) -> Page[Memory]:
        """One page of the agent's memories, newest first."""
        response = await self._http.send(page_call(agent_id, limit, cursor, filters))
        return Page[Memory].model_validate(response.json())

    async def list(
        self, agent_id: uuid.UUID | str, *, limit: int = 50, **filters: Unpack[MemoryFilters]
    ) -> AsyncIterator[Memory]:
        """Every memory of the agent, newest first, fetched `limit` per request."""
        cursor: str | None = None
        while True:
            page = await self.page(agent_id, limit=limit, cursor=cursor, **filters)
            for memory in page.data:
                yield memory
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, memory_id: uuid.UUID | str) -> Memory:
        """One memory."""
        response = await self._http.send(Call("GET", f"/v1/memories/{memory_id}"))
        return Memory.model_validate(response.json())

    async def update(
        self,
        memory_id: uuid.UUID | str,
        *,
        content: str | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Change a memory's content, importance or metadata (see `Memories.update`)."""
        call = update_call(memory_id, content=content, importance=importance, metadata=metadata)
        return Memory.model_validate((await self._http.send(call)).json())

    async def delete(self, memory_id: uuid.UUID | str) -> None:
        """Delete one memory."""
        await self._http.send(Call("DELETE", f"/v1/memories/{memory_id}"))

    async def erase(self, user_id: str, *, agent_id: uuid.UUID | str | None = None) -> Erased:
        """Erase everything stored about an end user (see `Memories.erase`)."""
        response = await self._http.send(erase_call(user_id, agent_id))
        return Erased.model_validate(response.json())

    async def erase_user(self, user_id: str, *, agent_id: uuid.UUID | str | None = None) -> int:
        """Erase everything stored about an end user; how many memories and blocks went (see
        `Memories.erase_user`)."""
        return (await self.erase(user_id, agent_id=agent_id)).deleted
