"""Where requests to tenants' URLs (MCP servers, webhook endpoints) may go: public addresses,
and private ones only when the deployer lists them (AGENTMILL_MCP_ALLOWED_HOSTS,
AGENTMILL_WEBHOOK_ALLOWED_HOSTS), so a tenant cannot make a worker reach the cloud metadata
service (169.254.169.254), the worker's own loopback services or the private network behind it.

Each request is checked as it is sent, after the host name is resolved: every address it
resolves to must be allowed. Redirects are not followed (webhooks), or only within the same
origin (the MCP SDK), each one a new request, checked again. (A name whose DNS answer
changes between the check and the connection could still slip through; deployers who need
that closed put workers behind an egress proxy.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx2

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DestinationRefused(Exception):
    """The host is not one MCP requests may reach."""


class Allowed:
    """The deployer's list of hosts and networks allowed although not public."""

    def __init__(
        self, entries: Iterable[str], setting: str = "AGENTMILL_MCP_ALLOWED_HOSTS"
    ) -> None:
        self.setting = setting
        """The variable that lists them, named in refusals."""
        self.names: set[str] = set()
        self.networks: list[Network] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.names.add(entry.strip().lower().rstrip("."))

    def permits(self, address: Address) -> bool:
        """Whether this address may be reached."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast


def url_problem(url: str) -> str | None:
    """Why this URL cannot be an MCP endpoint, judged without DNS (None: it may be)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    if parts.username or parts.password:
        return "must not carry credentials; send them as headers"
    return None


def literal_problem(url: str, allowed: Allowed) -> str | None:
    """Why the URL's host, when it is an IP address or `localhost`, may not be reached."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in allowed.names:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is not allowed ({allowed.setting} lists the ones allowed)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not allowed.permits(address):
        return f"{host} is a private or reserved address ({allowed.setting} lists the ones allowed)"
    return None


async def check_host(host: str, port: int, allowed: Allowed) -> None:
    """Raise DestinationRefused unless every address `host` resolves to is allowed."""
    name = host.lower().rstrip(".")
    if name in allowed.names:
        return
    problem = literal_problem(f"http://{host}/", allowed)
    if problem:
        raise DestinationRefused(problem)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationRefused(f"{host} does not resolve ({exc.strerror or exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not allowed.permits(address):
            raise DestinationRefused(
                f"{host} resolves to {address}, a private or reserved address "
                f"({allowed.setting} lists the ones allowed)"
            )


class GuardedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport that checks each request's destination before sending it."""

    def __init__(self, allowed: Allowed, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.allowed = allowed
        self.inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send the request if its host is allowed; DestinationRefused otherwise."""
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        await check_host(url.host, port, self.allowed)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the connections of the wrapped transport."""
        await self.inner.aclose()
