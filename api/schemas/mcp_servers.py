"""MCP server bodies: McpServerCreate, McpServerUpdate (PATCH), McpServerPublic. Header
values go in and never come out: the public form names the headers only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from agents.mcp.records import McpServer, NewMcpServer
from api.schemas.agents import McpServerName
from api.schemas.common import Inbound, invalid
from core.config import Settings
from core.egress import Allowed, literal_problem, url_problem

HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[^\r\n]*$", max_length=8192)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
_HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _headers(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > 32:
        raise ValueError("at most 32 headers")
    lowered = [name.lower() for name in value]
    if len(set(lowered)) != len(lowered):
        raise ValueError("names a header twice")
    if clash := sorted(set(lowered) & _HOP_BY_HOP):
        raise ValueError(f"{', '.join(clash)} cannot be set")
    return value


def check_destination(url: str | None, command: str | None, settings: Settings) -> None:
    """422 for a URL a worker may not reach (judged without DNS: literal addresses and
    localhost; workers check every resolved address again) or a stdio command the deployer
    did not allow."""
    if url is not None:
        problem = url_problem(url) or literal_problem(url, Allowed(settings.mcp_allowed_hosts))
        if problem:
            raise invalid("url", f"the URL {problem}", value=url)
    if command is not None and command not in settings.mcp_stdio_servers:
        known = ", ".join(sorted(settings.mcp_stdio_servers)) or "none are configured"
        raise invalid(
            "command",
            f"no stdio MCP server {command!r} in AGENTMILL_MCP_STDIO_SERVERS (allowed: {known})",
            value=command,
        )


class McpServerCreate(Inbound):
    """Body of POST /v1/mcp-servers."""

    name: McpServerName = Field(description="Unique per tenant; its tools are `<name>__<tool>`.")
    transport: Literal["http", "stdio"] = Field(
        default="http", description="`http`: streamable HTTP at `url`; `stdio`: `command`."
    )
    url: Url | None = Field(default=None, description="The streamable HTTP endpoint.")
    command: str | None = Field(
        default=None,
        max_length=64,
        description="A stdio server the deployer allows (AGENTMILL_MCP_STDIO_SERVERS), by name.",
    )
    headers: dict[HeaderName, HeaderValue] | None = Field(
        default=None,
        description="HTTP headers for every request (an Authorization); stored encrypted and "
        "never returned.",
    )
    timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Limit for one tool call; null: the default."
    )

    _check_headers = field_validator("headers")(classmethod(lambda cls, v: _headers(v)))

    @model_validator(mode="after")
    def transport_fields(self) -> McpServerCreate:
        """`http` takes a url (and headers), `stdio` a command."""
        if self.transport == "http":
            if self.url is None:
                raise ValueError("an http server needs a url")
            if self.command is not None:
                raise ValueError("an http server takes no command")
        else:
            if self.command is None:
                raise ValueError("a stdio server needs a command")
            if self.url is not None or self.headers:
                raise ValueError("a stdio server takes no url or headers")
        return self

    def new_server(self) -> NewMcpServer:
        """The agents layer's form."""
        return NewMcpServer(
            name=self.name,
            transport=self.transport,
            url=self.url,
            command=self.command,
            headers=dict(self.headers or {}),
            timeout_s=self.timeout_s,
        )


class McpServerUpdate(Inbound):
    """Body of PATCH /v1/mcp-servers/{id}: the fields sent change (`headers` is replaced as
    a whole; `timeout_s` may be set to null). Workers list the server's tools again."""

    url: Url | None = None
    headers: dict[HeaderName, HeaderValue] | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=3600)

    _check_headers = field_validator("headers")(classmethod(lambda cls, v: _headers(v)))

    @field_validator("url", "headers", mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """Only `timeout_s` can be set to null."""
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class McpToolPublic(BaseModel):
    """A tool of the server's last listing."""

    name: str = Field(description="The server's name for it.")
    exposed: str | None = Field(description="The name agents call it by; null: not offered.")
    description: str
    input_schema: dict[str, Any]
    read_only: bool = Field(description="Annotated read-only or idempotent by the server.")
    problem: str | None = Field(description="Why it is not offered.")


class McpServerPublic(BaseModel):
    """An MCP server as the API returns it (header names, never their values)."""

    id: uuid.UUID
    name: str
    transport: Literal["http", "stdio"]
    url: str | None
    command: str | None
    header_names: list[str]
    timeout_s: float | None
    tools: list[McpToolPublic] | None = Field(
        description="The last listing a worker made; null until a run first uses the server."
    )
    listed_at: datetime | None
    last_error: str | None = Field(description="Why the last listing failed, if it did.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, server: McpServer) -> McpServerPublic:
        """From the agents layer's record."""
        tools = None
        if server.tools is not None:
            tools = [McpToolPublic.model_validate(t.as_json()) for t in server.tools]
        return cls(
            id=server.id,
            name=server.name,
            transport=server.transport,
            url=server.url,
            command=server.command,
            header_names=list(server.header_names),
            timeout_s=server.timeout_s,
            tools=tools,
            listed_at=server.listed_at,
            last_error=server.last_error,
            created_at=server.created_at,
            updated_at=server.updated_at,
        )
