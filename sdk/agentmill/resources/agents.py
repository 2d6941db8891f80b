"""`client.agents`: create, get, list (every page), update, delete."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal, TypedDict

from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.models import Agent, Page

ToolChoice = Literal["auto", "required", "none"]


class MemoryParams(TypedDict, total=False):
    """An agent's memory policy as sent; fields left out keep their default (or, in an
    update, their current value)."""

    recall_k: int
    blocks: list[str] | None
    history_messages: int
    save_episodes: bool
    extract_facts: bool
    shared_blocks_writable: bool


class ApprovalParams(TypedDict, total=False):
    """Which tool calls wait for a human's approval: `tools` (names, `*` for all, or
    `prefix*`: `github__*` for an MCP server's tools) and
    `timeout_s` (then pending calls are denied); fields left out keep their value."""

    tools: list[str]
    timeout_s: int


class McpServerParams(TypedDict, total=False):
    """An MCP server the agent may use, by its registered name (`client.mcp_servers`), and
    optionally which of its tools (the server's names; left out: all of them). The model
    calls them `<server>__<tool>`."""

    server: str
    tools: list[str] | None


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET
"""Marks `temperature` or `parallel_tool_calls` as not sent in an update (None there means
'the model's default')."""


def _present(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def create_call(
    name: str,
    *,
    instructions: str | None,
    model: str | None,
    tools: Sequence[str] | None,
    memory: MemoryParams | None,
    max_steps: int | None,
    tool_choice: ToolChoice | None,
    approval: ApprovalParams | None,
    mcp_servers: Sequence[McpServerParams] | None,
    parallel_tool_calls: bool | None,
    temperature: float | None,
    metadata: dict[str, Any] | None,
) -> Call:
    """POST /v1/agents with the fields given (the server's defaults for the rest)."""
    body = _present(
        name=name,
        instructions=instructions,
        model=model,
        tools=list(tools) if tools is not None else None,
        memory=memory,
        max_steps=max_steps,
        tool_choice=tool_choice,
        approval=approval,
        mcp_servers=list(mcp_servers) if mcp_servers is not None else None,
        temperature=temperature,
        parallel_tool_calls=parallel_tool_calls,
        metadata=metadata,
    )
    return Call("POST", "/v1/agents", json=body, headers=new_key())


def update_call(
    agent_id: uuid.UUID | str,
    *,
    name: str | None,
    instructions: str | None,
    model: str | None,
    tools: Sequence[str] | None,
    memory: MemoryParams | None,
    max_steps: int | None,
    tool_choice: ToolChoice | None,
    approval: ApprovalParams | None,
    mcp_servers: Sequence[McpServerParams] | None,
    parallel_tool_calls: bool | _Unset | None,
    temperature: float | _Unset | None,
    metadata: dict[str, Any] | None,
) -> Call:
    """PATCH /v1/agents/{id} with only the fields given."""
    body = _present(
        name=name,
        instructions=instructions,
        model=model,
        tools=list(tools) if tools is not None else None,
        memory=memory,
        max_steps=max_steps,
        tool_choice=tool_choice,
        approval=approval,
        mcp_servers=list(mcp_servers) if mcp_servers is not None else None,
        metadata=metadata,
    )
    if temperature is not UNSET:
        body["temperature"] = temperature
    if parallel_tool_calls is not UNSET:
        body["parallel_tool_calls"] = parallel_tool_calls
    return Call("PATCH", f"/v1/agents/{agent_id}", json=body)


def page_call(limit: int, cursor: str | None) -> Call:
    """GET /v1/agents, one page."""
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", "/v1/agents", params=params)


class Agents:
    """The tenant's agents."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self,
        name: str,
        *,
        instructions: str | None = None,
        model: str | None = None,
        tools: Sequence[str] | None = None,
        memory: MemoryParams | None = None,
        max_steps: int | None = None,
        tool_choice: ToolChoice | None = None,
        approval: ApprovalParams | None = None,
        mcp_servers: Sequence[McpServerParams] | None = None,
        parallel_tool_calls: bool | None = None,
        temperature: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Agent:
        """Create an agent; `ConflictError` if the name is taken. Sent with an
        Idempotency-Key, so a retry returns the agent the first attempt created."""
        call = create_call(
            name,
            instructions=instructions,
            model=model,
            tools=tools,
            memory=memory,
            max_steps=max_steps,
            tool_choice=tool_choice,
            approval=approval,
            mcp_servers=mcp_servers,
            parallel_tool_calls=parallel_tool_calls,
            temperature=temperature,
            metadata=metadata,
        )
        return Agent.model_validate(self._http.send(call).json())

    def get(self, agent_id: uuid.UUID | str) -> Agent:
        """One agent; `NotFoundError` if the tenant has none with this id."""
        return Agent.model_validate(self._http.send(Call("GET", f"/v1/agents/{agent_id}")).json())

    def update(
        self,
        agent_id: uuid.UUID | str,
        *,
        name: str | None = None,
        instructions: str | None = None,
        model: str | None = None,
        tools: Sequence[str] | None = None,
        memory: MemoryParams | None = None,
        max_steps: int | None = None,
        tool_choice: ToolChoice | None = None,
        approval: ApprovalParams | None = None,
        mcp_servers: Sequence[McpServerParams] | None = None,
        parallel_tool_calls: bool | _Unset | None = UNSET,
        temperature: float | _Unset | None = UNSET,
        metadata: dict[str, Any] | None = None,
    ) -> Agent:
        """Change the fields given; `memory` and `approval` are merged field by field,
        `metadata` replaced,
        `temperature=None` (or `parallel_tool_calls=None`) resets it to the model's default."""
        call = update_call(
            agent_id,
            name=name,
            instructions=instructions,
            model=model,
            tools=tools,
            memory=memory,
            max_steps=max_steps,
            tool_choice=tool_choice,
            approval=approval,
            mcp_servers=mcp_servers,
            parallel_tool_calls=parallel_tool_calls,
            temperature=temperature,
            metadata=metadata,
        )
        return Agent.model_validate(self._http.send(call).json())

    def delete(self, agent_id: uuid.UUID | str) -> None:
        """Delete an agent with its sessions and runs; `ConflictError` while a run is active."""
        self._http.send(Call("DELETE", f"/v1/agents/{agent_id}"))

    def page(self, *, limit: int = 50, cursor: str | None = None) -> Page[Agent]:
        """One page of agents, oldest first."""
        response = self._http.send(page_call(limit, cursor))
        return Page[Agent].model_validate(response.json())

    def list(self, *, limit: int = 50) -> Iterator[Agent]:
        """Every agent, oldest first, fetched `limit` per request as iteration goes."""
        cursor: str | None = None
        while True:
            page = self.page(limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncAgents:
    """The tenant's agents (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        name: str,
        *,
        instructions: str | None = None,
        model: str | None = None,
        tools: Sequence[str] | None = None,
        memory: MemoryParams | None = None,
        max_steps: int | None = None,
        tool_choice: ToolChoice | None = None,
        approval: ApprovalParams | None = None,
        mcp_servers: Sequence[McpServerParams] | None = None,
        parallel_tool_calls: bool | None = None,
        temperature: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Agent:
        """Create an agent; `ConflictError` if the name is taken."""
        call = create_call(
            name,
            instructions=instructions,
            model=model,
            tools=tools,
            memory=memory,
            max_steps=max_steps,
            tool_choice=tool_choice,
            approval=approval,
            mcp_servers=mcp_servers,
            parallel_tool_calls=parallel_tool_calls,
            temperature=temperature,
            metadata=metadata,
        )
        return Agent.model_validate((await self._http.send(call)).json())

    async def get(self, agent_id: uuid.UUID | str) -> Agent:
        """One agent; `NotFoundError` if the tenant has none with this id."""
        response = await self._http.send(Call("GET", f"/v1/agents/{agent_id}"))
        return Agent.model_validate(response.json())

    async def update(
        self,
        agent_id: uuid.UUID | str,
        *,
        name: str | None = None,
        instructions: str | None = None,
        model: str | None = None,
        tools: Sequence[str] | None = None,
        memory: MemoryParams | None = None,
        max_steps: int | None = None,
        tool_choice: ToolChoice | None = None,
        approval: ApprovalParams | None = None,
        mcp_servers: Sequence[McpServerParams] | None = None,
        parallel_tool_calls: bool | _Unset | None = UNSET,
        temperature: float | _Unset | None = UNSET,
        metadata: dict[str, Any] | None = None,
    ) -> Agent:
        """Change the fields given (see `Agents.update`)."""
        call = update_call(
            agent_id,
            name=name,
            instructions=instructions,
            model=model,
            tools=tools,
            memory=memory,
            max_steps=max_steps,
            tool_choice=tool_choice,
            approval=approval,
            mcp_servers=mcp_servers,
            parallel_tool_calls=parallel_tool_calls,
            temperature=temperature,
            metadata=metadata,
        )
        return Agent.model_validate((await self._http.send(call)).json())

    async def delete(self, agent_id: uuid.UUID | str) -> None:
        """Delete an agent with its sessions and runs; `ConflictError` while a run is active."""
        await self._http.send(Call("DELETE", f"/v1/agents/{agent_id}"))

    async def page(self, *, limit: int = 50, cursor: str | None = None) -> Page[Agent]:
        """One page of agents, oldest first."""
        response = await self._http.send(page_call(limit, cursor))
        return Page[Agent].model_validate(response.json())

    async def list(self, *, limit: int = 50) -> AsyncIterator[Agent]:
        """Every agent, oldest first, fetched `limit` per request as iteration goes."""
        cursor: str | None = None
        while True:
            page = await self.page(limit=limit, cursor=cursor)
            for agent in page.data:
                yield agent
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
