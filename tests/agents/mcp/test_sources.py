"""An agent's MCP tools from real servers: the tests' MCP server started as a real process, over
stdio (from the deployer's allow-list) and streamable HTTP; listings stored on the server row,
calls made through the official SDK, every failure a tool error the model reads."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agents.errors import InvalidToolArguments, ToolError
from agents.mcp import store
from agents.mcp.connections import IDEMPOTENCY_META
from agents.mcp.records import McpEndpoint, NewMcpServer
from agents.mcp.sources import McpSources
from agents.records import McpServerUse
from agents.runs.portal import Portal
from agents.tools.context import ToolContext
from core.config import McpStdioCommand, Settings
from core.db import transaction
from core.secrets import SecretBox
from core.tenants import ensure_tenant
from tests.services import MCP_TEST_SERVER, ROOT


@pytest.fixture
def calls_log(tmp_path: Path) -> Path:
    return tmp_path / "calls.log"


@pytest.fixture
def mcp_settings(settings: Settings, calls_log: Path) -> Settings:
    command = McpStdioCommand(
        command=sys.executable,
        args=(*MCP_TEST_SERVER, "stdio"),
        cwd=str(ROOT),
        env={"MCP_TEST_LOG": str(calls_log)},
    )
    return settings.model_copy(
        update={
            "mcp_stdio_servers": {"weather": command},
            "mcp_allowed_hosts": ("127.0.0.1",),
            "mcp_call_timeout_s": 5.0,
        }
    )


@pytest.fixture
def sources(engine: Engine, mcp_settings: Settings) -> Iterator[McpSources]:
    portal = Portal()
    found = McpSources(engine, mcp_settings, portal)
    yield found
    found.close()
    portal.close()


@pytest.fixture
def tenant(engine: Engine) -> uuid.UUID:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "acme")
    return tenant_id


def register(engine: Engine, settings: Settings, tenant: uuid.UUID, new: NewMcpServer) -> None:
    with transaction(engine) as session:
        store.create_server(session, SecretBox.from_settings(settings), tenant, new)


def endpoints(
    sources: McpSources, engine: Engine, tenant: uuid.UUID, *names: str
) -> dict[str, McpEndpoint]:
    uses = [McpServerUse(name) for name in names]
    with transaction(engine) as session:
        found = sources.endpoints(session, tenant, uses)
    assert isinstance(found, dict)
    return found


def call(
    sources: McpSources,
    tool_name: str,
    uses: list[McpServerUse],
    found: dict[str, McpEndpoint],
    arguments: dict[str, object],
    key: str | None = None,
) -> str:
    toolset = sources.tools(uses, found, sources.portal.call)
    (tool,) = [t for t in toolset.tools if t.name == tool_name]
    ctx = ToolContext(tenant_id=uuid.uuid4(), agent_id=uuid.uuid4(), idempotency_key=key)
    return sources.portal.call(tool.call(ctx, arguments))


def test_a_stdio_server_lists_its_tools_and_its_calls_carry_the_idempotency_key(
    engine: Engine, mcp_settings: Settings, sources: McpSources, tenant: uuid.UUID, calls_log: Path
) -> None:
    register(
        engine,
        mcp_settings,
        tenant,
        NewMcpServer(name="weather", transport="stdio", command="weather"),
    )
    found = endpoints(sources, engine, tenant, "weather")
    uses = [McpServerUse("weather")]
    toolset = sources.tools(uses, found, sources.portal.call)
    assert toolset.problems == []
    names = {t.name for t in toolset.tools}
    assert {"weather__get_forecast", "weather__add", "weather__dotted_name"} <= names
    forecast = next(t for t in toolset.tools if t.name == "weather__get_forecast")
    assert forecast.idempotent  # annotated read-only by the server
    assert forecast.parameters["required"] == ["city"]

    assert (
        call(sources, "weather__get_forecast", uses, found, {"city": "Oslo"})
        == "Sunny in Oslo, 21 degrees"
    )
    assert '"sum": 5' in call(sources, "weather__add", uses, found, {"a": 2, "b": 3})
    assert (
        call(sources, "weather__record", uses, found, {"note": "n1"}, key="L:3:call_1")
        == "noted: n1"
    )
    assert "start L:3:call_1 n1" in calls_log.read_text()
    assert IDEMPOTENCY_META == "agentmill.dev/idempotency_key"

    with transaction(engine) as session:
        (server,) = store.list_servers(session, tenant, limit=5, after=None)
    assert server.listed_at is not None
    assert server.last_error is None
    assert server.tools is not None
    assert {t.exposed for t in server.tools} >= {"weather__get_forecast", "weather__dotted_name"}


def test_an_agent_is_offered_only_the_tools_it_names(
    engine: Engine, mcp_settings: Settings, sources: McpSources, tenant: uuid.UUID
) -> None:
    register(
        engine,
        mcp_settings,
        tenant,
        NewMcpServer(name="weather", transport="stdio", command="weather"),
    )
    found = endpoints(sources, engine, tenant, "weather")
    toolset = sources.tools([McpServerUse("weather", ("add",))], found, sources.portal.call)
    assert [t.name for t in toolset.tools] == ["weather__add"]


def test_failures_are_tool_errors_for_the_model(
    engine: Engine,
    mcp_settings: Settings,
    sources: McpSources,
    tenant: uuid.UUID,
    mcp_http_url: str,
) -> None:
    register(
        engine,
        mcp_settings,
        tenant,
        NewMcpServer(name="remote", transport="http", url=mcp_http_url),
    )
    found = endpoints(sources, engine, tenant, "remote")
    uses = [McpServerUse("remote")]
    with pytest.raises(ToolError, match="failed on purpose: boom"):
        call(sources, "remote__fail", uses, found, {"reason": "boom"})
    with pytest.raises(ToolError, match=r"MCP server 'remote': no answer within 5 s"):
        call(sources, "remote__slow", uses, found, {"seconds": 30})
    with pytest.raises(InvalidToolArguments, match="city"):
        call(sources, "remote__get_forecast", uses, found, {"town": "Oslo"})
    # After a timeout the session still answers.
    assert call(sources, "remote__get_forecast", uses, found, {"city": "Rome"}).startswith("Sunny")


def test_headers_are_sent_but_stored_sealed(
    engine: Engine,
    mcp_settings: Settings,
    sources: McpSources,
    tenant: uuid.UUID,
    mcp_http_url: str,
) -> None:
    new = NewMcpServer(
        name="remote", transport="http", url=mcp_http_url, headers={"X-Api-Key": "s3cret-value"}
    )
    register(engine, mcp_settings, tenant, new)
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT headers, header_names::text FROM mcp_servers").one()
    assert b"s3cret" not in bytes(raw[0])
    assert "X-Api-Key" in raw[1]
    found = endpoints(sources, engine, tenant, "remote")
    assert (
        call(sources, "remote__secret_check", [McpServerUse("remote")], found, {}) == "s3cret-value"
    )


def test_an_unreachable_server_is_a_problem_not_a_crash(
    engine: Engine, mcp_settings: Settings, sources: McpSources, tenant: uuid.UUID
) -> None:
    register(
        engine,
        mcp_settings,
        tenant,
        NewMcpServer(name="gone", transport="http", url="http://127.0.0.1:9/mcp"),
    )
    register(
        engine,
        mcp_settings,
        tenant,
        NewMcpServer(name="meta", transport="http", url="http://169.254.169.254/mcp"),
    )
    found = endpoints(sources, engine, tenant, "gone", "meta")
    toolset = sources.tools(
        [McpServerUse("gone"), McpServerUse("meta"), McpServerUse("deleted")],
        found,
        sources.portal.call,
    )
    assert toolset.tools == []
    problems = {p.server: p.message for p in toolset.problems}
    assert "cannot connect" in problems["gone"]
    assert "private or reserved" in problems["meta"]
    assert "no MCP server" in problems["deleted"]
    with transaction(engine) as session:
        servers = {s.name: s for s in store.list_servers(session, tenant, limit=5, after=None)}
    assert "cannot connect" in (servers["gone"].last_error or "")


def test_a_stdio_server_that_exits_is_started_again(
    engine: Engine, mcp_settings: Settings, sources: McpSources, tenant: uuid.UUID
) -> None:
    register(
        engine,
        mcp_settings,
        tenant,
        NewMcpServer(name="weather", transport="stdio", command="weather"),
    )
    found = endpoints(sources, engine, tenant, "weather")
    uses = [McpServerUse("weather")]
    assert call(sources, "weather__dotted_name", uses, found, {}) == "dotted"

    async def kill_all() -> None:
        for session in list(sources.connections._sessions.values()):
            session.close()
            await session.task

    sources.portal.call(kill_all())
    assert call(sources, "weather__dotted_name", uses, found, {}) == "dotted"
