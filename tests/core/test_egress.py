"""Where MCP requests may go: public addresses; private, loopback, link-local and reserved ones
only when the deployer lists them (checked after DNS, on every request)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx2
import pytest

from core.egress import (
    Allowed,
    DestinationRefused,
    GuardedTransport,
    check_host,
    literal_problem,
    url_problem,
)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "127.0.0.1", "10.1.2.3", "192.168.0.1", "100.64.0.1", "::1", "fd00::1",
     "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"],  # noqa: S104
)  # fmt: skip
def test_non_public_addresses_are_refused_unless_listed(address: str) -> None:
    assert not Allowed([]).permits(ipaddress.ip_address(address))
    assert literal_problem(
        f"http://[{address}]/" if ":" in address else f"http://{address}/", Allowed([])
    )


def test_public_addresses_pass_and_listed_networks_and_names_are_allowed() -> None:
    assert Allowed([]).permits(ipaddress.ip_address("8.8.8.8"))
    allowed = Allowed(["10.0.0.0/8", "127.0.0.1", "mcp.internal"])
    assert allowed.permits(ipaddress.ip_address("10.9.9.9"))
    assert allowed.permits(ipaddress.ip_address("127.0.0.1"))
    assert not allowed.permits(ipaddress.ip_address("127.0.0.2"))
    assert literal_problem("http://mcp.internal/mcp", allowed) is None
    assert literal_problem("http://localhost:9000/", Allowed([])) is not None


@pytest.mark.parametrize(
    ("url", "problem"),
    [("ftp://x/", "http"), ("http:///nohost", "host"), ("https://u:p@h/", "credentials")],
)
def test_urls_that_cannot_be_endpoints(url: str, problem: str) -> None:
    assert problem in (url_problem(url) or "")
    assert url_problem("https://mcp.example.com/mcp") is None


def test_a_host_name_is_judged_by_the_addresses_it_resolves_to() -> None:
    # This machine's own name resolves to one of its addresses: loopback or private.
    with pytest.raises(DestinationRefused, match=r"resolves to|does not resolve"):
        asyncio.run(check_host(socket.gethostname(), 80, Allowed([])))
    asyncio.run(check_host(socket.gethostname(), 80, Allowed([socket.gethostname()])))


def test_the_transport_refuses_before_any_connection() -> None:
    async def fetch() -> None:
        async with httpx2.AsyncClient(transport=GuardedTransport(Allowed([]))) as client:
            await client.get("http://169.254.169.254/latest/meta-data/")

    with pytest.raises(DestinationRefused, match=r"169\.254\.169\.254"):
        asyncio.run(fetch())
