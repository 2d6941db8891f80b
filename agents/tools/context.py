"""What a tool receives besides its arguments: who calls it, and the injected services."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from memory.store import MemoryStore


class Clock(Protocol):
    """Where tools get the time, so that tests can fix it."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock that always reads `at` (for tests and replays)."""

    at: datetime
    """The time it reads; must be timezone-aware."""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")

    def now(self) -> datetime:
        """Always `at`."""
        return self.at


@dataclass(frozen=True)
class ToolServices:
    """Dependencies injected into tools; never reached through globals."""

    clock: Clock = field(default_factory=SystemClock)
    """The time source."""
    memory: MemoryStore | None = None
    """Long-term and core memory, for the memory tools (None: those tools report it)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Deployers' own services by name (an HTTP client, an API handle)."""


@dataclass(frozen=True)
class ToolContext:
    """Who is calling a tool, and with what services; the first parameter of a tool."""

    tenant_id: uuid.UUID
    """Tenant of the run; every data access must be scoped to it."""
    agent_id: uuid.UUID
    """The agent whose run calls the tool."""
    user_id: str | None = None
    """The end user of the session, if any."""
    session_id: uuid.UUID | None = None
    """The session of the run, if any (batch items have none)."""
    run_id: uuid.UUID | None = None
    """The run executing the call."""
    tool_call_id: str | None = None
    """Id of the model's tool call being executed."""
    idempotency_key: str | None = None
    """`{lineage}:{step}:{call_id}`: the same for every execution of this call, by a resumed
    run or a batch item's retry, and for no other call. Pass it to outside systems (as an
    Idempotency-Key header, a unique request id) so a repeated call does nothing twice."""
    shared_blocks_writable: bool = False
    """Whether the memory tools may edit the agent-wide core blocks (the agent's memory
    policy); off, they write only the session user's own blocks."""
    services: ToolServices = field(default_factory=ToolServices)
    """Injected dependencies."""
