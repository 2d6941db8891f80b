"""Sending requests: retries with backoff, errors mapped from the envelope.

Resources describe a request as a `Call`; `HTTP` (sync) and `AsyncHTTP` send it. A stream is
opened once, without retries: the event follower (stream.py) decides how to resume it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from agentmill.errors import AgentmillAPIError, connection_error, raise_for_error
from agentmill.retry import RetryPolicy

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def new_key() -> dict[str, str]:
    """A fresh Idempotency-Key header: a create sent with it may be retried, since the server
    answers a repeat with the first request's result instead of creating again."""
    return {"Idempotency-Key": str(uuid.uuid4())}


@dataclass(frozen=True)
class Call:
    """One request as a resource describes it."""

    method: str
    path: str
    json: Any = None
    """The JSON body; None: no body."""
    content: bytes | None = None
    """A raw body instead (give its Content-Type in `headers`)."""
    params: Mapping[str, str | int | Sequence[str]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: httpx.Timeout | None = None
    """Overrides the client's timeout for this call."""
    idempotent: bool | None = None
    """Safe to send twice; None: decided by the method and an Idempotency-Key header."""

    @property
    def retry_safe(self) -> bool:
        """Whether a failure after the request reached the server may be retried."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS or "Idempotency-Key" in self.headers

    def options(self) -> dict[str, Any]:
        """Keyword arguments of httpx's `request`/`stream`."""
        options: dict[str, Any] = {"params": self.params, "headers": dict(self.headers)}
        if self.json is not None:
            options["json"] = self.json
        if self.content is not None:
            options["content"] = self.content
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return options


def with_read(timeout: httpx.Timeout, read: float | None) -> httpx.Timeout:
    """`timeout` with another read timeout (the longest wait between two chunks)."""
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


class HTTP:
    """Sends calls on an httpx.Client, retrying per the policy."""

    def __init__(
        self,
        client: httpx.Client,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.retry = retry
        self.sleep = sleep

    def send(self, call: Call) -> httpx.Response:
        """The 2xx response to `call`; raises the SDK's error once retries are spent."""
        attempt = 0
        while True:
            try:
                response = self.client.request(call.method, call.path, **call.options())
                raise_for_error(response)
                return response
            except (httpx.TransportError, AgentmillAPIError) as exc:
                delay = self.retry.after_failure(attempt, exc, call.retry_safe)
                if delay is None:
                    reraise(exc)
            self.sleep(delay)
            attempt += 1

    @contextmanager
    def stream(self, call: Call) -> Iterator[httpx.Response]:
        """The 2xx response to `call` with its body unread (one attempt, no retries)."""
        with self.client.stream(call.method, call.path, **call.options()) as response:
            if not response.is_success:
                response.read()
                raise_for_error(response)
            yield response


class AsyncHTTP:
    """Sends calls on an httpx.AsyncClient, retrying per the policy."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.retry = retry
        self.sleep = sleep

    async def send(self, call: Call) -> httpx.Response:
        """The 2xx response to `call`; raises the SDK's error once retries are spent."""
        attempt = 0
        while True:
            try:
                response = await self.client.request(call.method, call.path, **call.options())
                raise_for_error(response)
                return response
            except (httpx.TransportError, AgentmillAPIError) as exc:
                delay = self.retry.after_failure(attempt, exc, call.retry_safe)
                if delay is None:
                    reraise(exc)
            await self.sleep(delay)
            attempt += 1

    @asynccontextmanager
    async def stream(self, call: Call) -> AsyncIterator[httpx.Response]:
        """The 2xx response to `call` with its body unread (one attempt, no retries)."""
        async with self.client.stream(call.method, call.path, **call.options()) as response:
            if not response.is_success:
                await response.aread()
                raise_for_error(response)
            yield response


def reraise(exc: Exception) -> NoReturn:
    """Raise `exc` as the SDK's error: transport failures become APIConnectionError."""
    if isinstance(exc, httpx.TransportError):
        raise connection_error(exc) from exc
    raise exc
