"""Plain data of the MCP tool sources."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

McpTransport = Literal["http", "stdio"]
SEPARATOR = "__"
"""Between a server's name and its tool's in the name the model calls: `weather__forecast`."""


@dataclass(frozen=True, kw_only=True)
class NewMcpServer:
    """What a tenant registers."""

    name: str
    """Unique per tenant; the prefix of its tools' names."""
    transport: McpTransport
    """`http` (streamable HTTP at `url`) or `stdio` (the deployer's `command`)."""
    url: str | None = None
    """The endpoint of an HTTP server."""
    command: str | None = None
    """The name of a stdio server in AGENTMILL_MCP_STDIO_SERVERS."""
    headers: dict[str, str] = field(default_factory=dict)
    """HTTP headers sent with every request (an Authorization); stored sealed, never shown."""
    timeout_s: float | None = None
    """Limit for one tool call; None: AGENTMILL_MCP_CALL_TIMEOUT_S."""


@dataclass(frozen=True)
class ListedTool:
    """One tool of a server's last listing, and whether agents are offered it."""

    name: str
    """The server's name for it."""
    exposed: str | None
    """The name the model calls it by (`<server>__<name>`); None when it cannot be offered."""
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    """Annotated read-only or idempotent by the server: a call cut short runs again."""
    problem: str | None = None
    """Why it is not offered (a name or schema agentmill cannot use)."""

    def as_json(self) -> dict[str, Any]:
        """The jsonb form of the listing."""
        return {
            "name": self.name,
            "exposed": self.exposed,
            "description": self.description,
            "input_schema": self.input_schema,
            "read_only": self.read_only,
            "problem": self.problem,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ListedTool:
        """Inverse of `as_json`."""
        return cls(
            name=str(raw["name"]),
            exposed=raw.get("exposed"),
            description=str(raw.get("description", "")),
            input_schema=dict(raw.get("input_schema") or {}),
            read_only=bool(raw.get("read_only")),
            problem=raw.get("problem"),
        )


@dataclass(frozen=True, kw_only=True)
class McpServer:
    """A registered server as the API shows it (no header values)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    transport: McpTransport
    url: str | None
    command: str | None
    header_names: tuple[str, ...]
    timeout_s: float | None
    tools: tuple[ListedTool, ...] | None
    """The last listing a worker made; None before the first."""
    listed_at: datetime | None
    last_error: str | None
    """Why the last listing failed; None once one succeeds."""
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class McpEndpoint:
    """How a worker reaches one server: its address with the headers opened."""

    server_id: uuid.UUID
    name: str
    version: str
    """Changes whenever the server's registration does: cached listings and connections of
    another version are not reused."""
    transport: McpTransport
    url: str | None
    command: str | None
    headers: dict[str, str]
    timeout_s: float | None
