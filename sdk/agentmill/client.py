"""`Client` and `AsyncClient`: one server, one API key, the resources on top.

Resources hang off the client as attributes (`agents`, `sessions`, `runs`, `memories`,
`blocks`, `batches`, `mcp_servers`, `webhooks`, `schedules`), each from its module in resources/.
"""

from __future__ import annotations

from types import TracebackType

import httpx

from agentmill._http import HTTP, AsyncHTTP, Call
from agentmill.models import Me
from agentmill.resources.agents import Agents, AsyncAgents
from agentmill.resources.batches import AsyncBatches, Batches
from agentmill.resources.blocks import AsyncBlocks, Blocks
from agentmill.resources.mcp_servers import AsyncMcpServers, McpServers
from agentmill.resources.memories import AsyncMemories, Memories
from agentmill.resources.runs import AsyncRuns, Runs
from agentmill.resources.schedules import AsyncSchedules, Schedules
from agentmill.resources.sessions import AsyncSessions, Sessions
from agentmill.resources.webhooks import AsyncWebhooks, Webhooks
from agentmill.retry import RetryPolicy

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "agentmill-python/0.1.0"


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class Client:
    """A connection to one agentmill server, authenticated with one API key.

    `timeout_s` bounds each request (streams wait at least 45 s between reads, and `send`
    as long as its own `timeout`); `retry` says how failed requests are retried.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        client = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout_s, transport=transport
        )
        self._http = HTTP(client, retry or RetryPolicy())
        self.agents = Agents(self._http)
        self.sessions = Sessions(self._http)
        self.runs = Runs(self._http)
        self.memories = Memories(self._http)
        self.blocks = Blocks(self._http)
        self.batches = Batches(self._http)
        self.mcp_servers = McpServers(self._http)
        self.webhooks = Webhooks(self._http)
        self.schedules = Schedules(self._http)

    def healthy(self) -> bool:
        """Whether the server process answers `/healthz` (one attempt)."""
        try:
            return self._http.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def ready(self) -> bool:
        """Whether the server and its database are ready (`/readyz` is 200; one attempt)."""
        try:
            return self._http.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def me(self) -> Me:
        """The tenant this client's key belongs to; raises `AuthenticationError` if invalid."""
        return Me.model_validate(self._http.send(Call("GET", "/v1/me")).json())

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """The asyncio twin of `Client`: the same resources, their methods awaitable."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        client = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout_s, transport=transport
        )
        self._http = AsyncHTTP(client, retry or RetryPolicy())
        self.agents = AsyncAgents(self._http)
        self.sessions = AsyncSessions(self._http)
        self.runs = AsyncRuns(self._http)
        self.memories = AsyncMemories(self._http)
        self.blocks = AsyncBlocks(self._http)
        self.batches = AsyncBatches(self._http)
        self.mcp_servers = AsyncMcpServers(self._http)
        self.webhooks = AsyncWebhooks(self._http)
        self.schedules = AsyncSchedules(self._http)

    async def healthy(self) -> bool:
        """Whether the server process answers `/healthz` (one attempt)."""
        try:
            return (await self._http.client.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def ready(self) -> bool:
        """Whether the server and its database are ready (`/readyz` is 200; one attempt)."""
        try:
            return (await self._http.client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def me(self) -> Me:
        """The tenant this client's key belongs to; raises `AuthenticationError` if invalid."""
        return Me.model_validate((await self._http.send(Call("GET", "/v1/me"))).json())

    async def aclose(self) -> None:
        """Close the underlying connections."""
        await self._http.client.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
