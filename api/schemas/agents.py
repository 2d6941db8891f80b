"""Agent bodies: AgentCreate, AgentUpdate (PATCH), AgentPublic, and the memory and approval
policies'."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from agents.records import (
    Agent,
    AgentChanges,
    ApprovalPolicy,
    McpServerUse,
    MemoryPolicy,
    NewAgent,
    ToolChoice,
)
from api.schemas.common import Inbound, Metadata, invalid
from core.config import Settings

# The API process does not load deployer tools, so it checks only the shape of a name; a name
# no worker knows fails the run with a configuration_error when it starts.
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# An approval entry: a name, or a prefix and `*` (`github__*`: an MCP server's tools).
ApprovalEntry = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}\*?$")]
# The rule of MCP server names (api/schemas/mcp_servers.py): no `__`, the tool-name separator.
McpServerName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*(_[a-z0-9-]+)*$", max_length=32)
]
McpToolName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# The label rule of memory/blocks.py.
BlockLabel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def _unique(values: list[str] | None) -> list[str] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("must not repeat a name")
    return values


class MemoryPolicyIn(Inbound):
    """How an agent uses memory (every field optional, with its default)."""

    recall_k: int = Field(default=5, ge=0, le=50, description="Memories retrieved per message.")
    blocks: list[BlockLabel] | None = Field(
        default=None, max_length=64, description="Core block labels in context; null: all."
    )
    history_messages: int = Field(default=20, ge=0, le=200, description="Recent messages kept.")
    save_episodes: bool = Field(default=True, description="Store each exchange as a memory.")
    extract_facts: bool = Field(default=True, description="Extract durable facts after a run.")
    shared_blocks_writable: bool = Field(
        default=False,
        description="Let the core_memory tools edit the agent-wide blocks every user sees "
        "(off: a tool edit writes the session user's own block).",
    )

    @field_validator("blocks")
    @classmethod
    def blocks_unique(cls, value: list[str] | None) -> list[str] | None:
        """Refuse a label listed twice."""
        return _unique(value)

    def policy(self) -> MemoryPolicy:
        """The agents layer's form."""
        values = self.model_dump()
        blocks = values.pop("blocks")
        return MemoryPolicy(**values, blocks=tuple(blocks) if blocks is not None else None)


class MemoryPolicyPatch(MemoryPolicyIn):
    """A partial memory policy: the fields sent replace the agent's, the rest stay."""

    def apply(self, current: MemoryPolicy) -> MemoryPolicy:
        """`current` with the sent fields replaced."""
        changes = self.model_dump(exclude_unset=True)
        if changes.get("blocks") is not None:
            changes["blocks"] = tuple(changes["blocks"])
        return dataclasses.replace(current, **changes)


class MemoryPolicyPublic(BaseModel):
    """An agent's memory policy."""

    recall_k: int
    blocks: list[str] | None
    history_messages: int
    save_episodes: bool
    extract_facts: bool
    shared_blocks_writable: bool

    @classmethod
    def of(cls, policy: MemoryPolicy) -> MemoryPolicyPublic:
        """From the agents layer's form."""
        return cls.model_validate(policy.as_json())


class ApprovalPolicyIn(Inbound):
    """Which tool calls wait for a human's approval (every field optional, with its default)."""

    tools: list[ApprovalEntry | Literal["*"]] = Field(
        default_factory=list,
        max_length=64,
        description="Tool names whose calls need approval; `*`: every tool; `prefix*`: every "
        "tool whose name starts with `prefix` (`github__*`: the MCP server github's tools).",
    )
    timeout_s: int = Field(
        default=86_400,
        ge=10,
        le=30 * 86_400,
        description="How long a run waits for a decision; then its pending calls are denied.",
    )

    @field_validator("tools")
    @classmethod
    def tools_unique(cls, value: list[str]) -> list[str]:
        """Refuse a name listed twice."""
        return _unique(value) or []

    def policy(self) -> ApprovalPolicy:
        """The agents layer's form."""
        return ApprovalPolicy(tools=tuple(self.tools), timeout_s=self.timeout_s)


class ApprovalPolicyPatch(ApprovalPolicyIn):
    """A partial approval policy: the fields sent replace the agent's, the rest stay."""

    def apply(self, current: ApprovalPolicy) -> ApprovalPolicy:
        """`current` with the sent fields replaced."""
        changes = self.model_dump(exclude_unset=True)
        if "tools" in changes:
            changes["tools"] = tuple(changes["tools"])
        return dataclasses.replace(current, **changes)


class ApprovalPolicyPublic(BaseModel):
    """An agent's approval policy."""

    tools: list[str]
    timeout_s: int

    @classmethod
    def of(cls, policy: ApprovalPolicy) -> ApprovalPolicyPublic:
        """From the agents layer's form."""
        return cls.model_validate(policy.as_json())


class McpServerUseIn(Inbound):
    """An MCP server the agent may use (registered with POST /v1/mcp-servers), by name."""

    server: McpServerName
    tools: list[McpToolName] | None = Field(
        default=None,
        max_length=128,
        description="The server's names of the tools offered; null: all of them.",
    )

    @field_validator("tools")
    @classmethod
    def tools_unique(cls, value: list[str] | None) -> list[str] | None:
        """Refuse a tool listed twice."""
        return _unique(value)

    def use(self) -> McpServerUse:
        """The agents layer's form."""
        return McpServerUse(
            server=self.server, tools=None if self.tools is None else tuple(self.tools)
        )


class McpServerUsePublic(BaseModel):
    """An MCP server the agent may use."""

    server: str
    tools: list[str] | None


def _servers_unique(value: list[McpServerUseIn] | None) -> list[McpServerUseIn] | None:
    if value is not None:
        _unique([use.server for use in value])
    return value


class AgentCreate(Inbound):
    """Body of POST /v1/agents."""

    name: str = Field(min_length=1, max_length=128, description="Unique per tenant.")
    instructions: str = Field(default="", max_length=20_000, description="The system prompt.")
    model: str = Field(default="local", min_length=1, max_length=128, description="Alias.")
    tools: list[ToolName] = Field(default_factory=list, max_length=64)
    memory: MemoryPolicyIn = Field(default_factory=MemoryPolicyIn)
    max_steps: int = Field(default=8, ge=1, le=50, description="Most model calls per run.")
    tool_choice: ToolChoice = Field(
        default="auto",
        description="First step: auto, required (start with a tool call) or none (no tools).",
    )
    approval: ApprovalPolicyIn = Field(default_factory=ApprovalPolicyIn)
    mcp_servers: list[McpServerUseIn] = Field(
        default_factory=list,
        max_length=16,
        description="MCP servers whose tools it may call, as `<server>__<tool>`.",
    )
    parallel_tool_calls: bool | None = Field(
        default=None,
        description="Let the model make several tool calls in one reply; null: the model's "
        "default (one on the bundled model).",
    )
    temperature: float | None = Field(default=None, ge=0, le=2, description="null: default.")
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("tools")
    @classmethod
    def tools_unique(cls, value: list[str]) -> list[str]:
        """Refuse a tool listed twice."""
        return _unique(value) or []

    @field_validator("mcp_servers")
    @classmethod
    def servers_unique(cls, value: list[McpServerUseIn]) -> list[McpServerUseIn]:
        """Refuse a server listed twice."""
        return _servers_unique(value) or []

    def new_agent(self) -> NewAgent:
        """The agents layer's form."""
        values = self.model_dump(exclude={"memory", "tools", "approval", "mcp_servers"})
        return NewAgent(
            **values,
            tools=tuple(self.tools),
            memory=self.memory.policy(),
            approval=self.approval.policy(),
            mcp_servers=tuple(use.use() for use in self.mcp_servers),
        )


class AgentUpdate(Inbound):
    """Body of PATCH /v1/agents/{id}: only the fields sent change (`metadata` is replaced as a
    whole, `memory` field by field); `temperature` and `parallel_tool_calls` may be set to
    null."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    instructions: str | None = Field(default=None, max_length=20_000)
    model: str | None = Field(default=None, min_length=1, max_length=128)
    tools: list[ToolName] | None = Field(default=None, max_length=64)
    memory: MemoryPolicyPatch | None = None
    max_steps: int | None = Field(default=None, ge=1, le=50)
    tool_choice: ToolChoice | None = None
    approval: ApprovalPolicyPatch | None = None
    mcp_servers: list[McpServerUseIn] | None = Field(default=None, max_length=16)
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    metadata: Metadata | None = None

    @field_validator(
        "name",
        "instructions",
        "model",
        "tools",
        "memory",
        "max_steps",
        "tool_choice",
        "approval",
        "mcp_servers",
        "metadata",
        mode="before",
    )
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """Only `temperature` and `parallel_tool_calls` can be set to null; the others can
        only be left out."""
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    @field_validator("tools")
    @classmethod
    def tools_unique(cls, value: list[str] | None) -> list[str] | None:
        """Refuse a tool listed twice."""
        return _unique(value)

    @field_validator("mcp_servers")
    @classmethod
    def servers_unique(cls, value: list[McpServerUseIn] | None) -> list[McpServerUseIn] | None:
        """Refuse a server listed twice."""
        return _servers_unique(value)

    def changes(self, current: Agent) -> AgentChanges:
        """The agents layer's form, for an agent now like `current`."""
        nested = {"memory", "tools", "approval", "mcp_servers"}
        changes = self.model_dump(exclude_unset=True, exclude=nested)
        if self.tools is not None:
            changes["tools"] = tuple(self.tools)
        if self.mcp_servers is not None:
            changes["mcp_servers"] = tuple(use.use() for use in self.mcp_servers)
        if self.memory is not None:
            changes["memory"] = self.memory.apply(current.memory)
        if self.approval is not None:
            changes["approval"] = self.approval.apply(current.approval)
        return AgentChanges(**changes)


def check_model(model: str | None, settings: Settings) -> None:
    """422 (param `model`) unless `model` is a router alias: `local` or a key of
    settings.models. The check is here, not in the body, because it needs the settings."""
    aliases = {"local", *settings.models}
    if model is not None and model not in aliases:
        known = ", ".join(sorted(aliases))
        raise invalid("model", f"unknown model alias {model!r}; known: {known}", value=model)


class AgentPublic(BaseModel):
    """An agent as the API returns it."""

    id: uuid.UUID
    name: str
    instructions: str
    model: str
    tools: list[str]
    memory: MemoryPolicyPublic
    max_steps: int
    tool_choice: ToolChoice
    approval: ApprovalPolicyPublic
    mcp_servers: list[McpServerUsePublic]
    parallel_tool_calls: bool | None
    temperature: float | None
    metadata: Metadata
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, agent: Agent) -> AgentPublic:
        """From the agents layer's record."""
        return cls(
            id=agent.id,
            name=agent.name,
            instructions=agent.instructions,
            model=agent.model,
            tools=list(agent.tools),
            memory=MemoryPolicyPublic.of(agent.memory),
            max_steps=agent.max_steps,
            tool_choice=agent.tool_choice,
            approval=ApprovalPolicyPublic.of(agent.approval),
            mcp_servers=[
                McpServerUsePublic(
                    server=use.server, tools=None if use.tools is None else list(use.tools)
                )
                for use in agent.mcp_servers
            ],
            parallel_tool_calls=agent.parallel_tool_calls,
            temperature=agent.temperature,
            metadata=agent.metadata,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
        )
