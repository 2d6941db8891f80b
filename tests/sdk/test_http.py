"""Sending calls: retries with backoff, Retry-After, errors mapped (httpx.MockTransport)."""

from __future__ import annotations

import asyncio

import agentmill
import httpx
import pytest
from agentmill._http import HTTP, AsyncHTTP, Call
from agentmill.retry import RetryPolicy

from tests.sdk.fakes import Server, Sleeps, answer, error_body

POLICY = RetryPolicy(max_retries=3, initial_delay_s=1.0, max_delay_s=4.0, jitter=0.0)


def http(server: Server, sleeps: Sleeps, policy: RetryPolicy = POLICY) -> HTTP:
    client = httpx.Client(base_url="http://am.test", transport=httpx.MockTransport(server))
    return HTTP(client, policy, sleep=sleeps)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def dropped(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset", request=request)


def test_5xx_on_a_get_is_retried_with_exponential_backoff() -> None:
    unavailable = answer(503, error_body("unavailable", "db down"))
    server = Server([unavailable, unavailable, unavailable, answer(200, {"ok": True})])
    sleeps = Sleeps()
    assert http(server, sleeps).send(Call("GET", "/v1/me")).json() == {"ok": True}
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(server.requests) == 4


def test_retries_stop_after_max_retries_with_the_last_error() -> None:
    server = Server([answer(500, error_body("internal_error", "bug"))] * 4)
    sleeps = Sleeps()
    with pytest.raises(agentmill.APIError) as raised:
        http(server, sleeps).send(Call("GET", "/v1/me"))
    assert raised.value.status == 500
    assert len(server.requests) == 4
    assert len(sleeps) == 3


def test_429_waits_as_long_as_retry_after_says() -> None:
    limited = answer(429, error_body("rate_limited", "slow down"), {"Retry-After": "7"})
    server = Server([limited, answer(200, {"ok": True})])
    sleeps = Sleeps()
    http(server, sleeps).send(Call("POST", "/v1/agents", json={"name": "a"}))
    assert sleeps == [7.0]


def test_a_retry_after_beyond_the_limit_is_raised_to_the_caller() -> None:
    limited = answer(429, error_body("rate_limited", "slow down"), {"Retry-After": "3600"})
    sleeps = Sleeps()
    with pytest.raises(agentmill.RateLimitError) as raised:
        http(Server([limited]), sleeps).send(Call("GET", "/v1/me"))
    assert raised.value.retry_after == 3600.0
    assert sleeps == []


def test_a_post_without_idempotency_key_is_not_retried_after_reaching_the_server() -> None:
    server = Server([answer(500, error_body("internal_error", "bug")), dropped])
    sleeps = Sleeps()
    with pytest.raises(agentmill.APIError):
        http(server, sleeps).send(Call("POST", "/v1/agents", json={"name": "a"}))
    with pytest.raises(agentmill.APIConnectionError):
        http(Server([dropped]), sleeps).send(Call("POST", "/v1/agents", json={"name": "a"}))
    assert sleeps == []


def test_a_post_with_idempotency_key_is_retried_with_the_same_key() -> None:
    server = Server([dropped, answer(500, error_body("internal_error", "bug")), answer(202, {})])
    call = Call(
        "POST", "/v1/sessions/s/messages", json={"content": "hi"}, headers={"Idempotency-Key": "k1"}
    )
    http(server, Sleeps()).send(call)
    assert [r.headers["Idempotency-Key"] for r in server.requests] == ["k1", "k1", "k1"]


def test_a_refused_connection_is_retried_even_for_a_post() -> None:
    server = Server([refused, answer(201, {"id": "x"})])
    assert http(server, Sleeps()).send(Call("POST", "/v1/agents", json={})).status_code == 201


def test_connection_failures_surface_as_the_sdks_errors() -> None:
    with pytest.raises(agentmill.APIConnectionError) as raised:
        http(Server([refused] * 4), Sleeps()).send(Call("GET", "/v1/me"))
    assert isinstance(raised.value.__cause__, httpx.ConnectError)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(agentmill.APITimeoutError):
        http(Server([slow] * 4), Sleeps()).send(Call("GET", "/v1/me"))


def test_client_errors_are_raised_at_once() -> None:
    server = Server([answer(404, error_body("not_found", "no such agent", "agent_id"))])
    with pytest.raises(agentmill.NotFoundError) as raised:
        http(server, Sleeps()).send(Call("GET", "/v1/agents/x"))
    assert (raised.value.type, raised.value.param) == ("not_found", "agent_id")
    assert len(server.requests) == 1


def test_the_async_sender_retries_the_same_way() -> None:
    unavailable = answer(503, error_body("unavailable", "db down"))
    server = Server([unavailable, unavailable, answer(200, {"ok": True})])
    sleeps = Sleeps()
    transport = httpx.MockTransport(server.handle_async)

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(base_url="http://am.test", transport=transport) as client:
            return await AsyncHTTP(client, POLICY, sleep=sleeps.async_sleep).send(
                Call("DELETE", "/v1/agents/x")
            )

    assert asyncio.run(main()).json() == {"ok": True}
    assert sleeps == [1.0, 2.0]


def test_the_client_sends_its_key_and_the_configured_timeout() -> None:
    server = Server(
        [
            answer(
                200,
                {
                    "tenant_id": "5f0c0000-0000-4000-8000-000000000001",
                    "tenant_name": "acme",
                    "key_id": "k",
                },
            )
        ]
    )
    client = agentmill.Client(
        "am_secret",
        base_url="http://am.test",
        timeout_s=12.5,
        transport=httpx.MockTransport(server),
    )
    assert client.me().tenant_name == "acme"
    request = server.requests[0]
    assert request.headers["Authorization"] == "Bearer am_secret"
    assert request.extensions["timeout"]["read"] == 12.5
    client.close()
