"""`client.sessions`: create, list an agent's (every page), get, delete, messages, runs, and
sending a message (send, stream)."""

from __future__ import annotations

import builtins
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from agentmill import stream
from agentmill._http import HTTP, AsyncHTTP, Call, new_key, with_read
from agentmill.erasure_models import ErasedCounts
from agentmill.errors import RunTimeoutError
from agentmill.models import Message, Page, Run, Session

MAX_SERVER_WAIT_S = 300.0
"""Longest `timeout_s` the server accepts for `wait`; the SDK follows the run beyond it."""
WAIT_SLACK_S = 15.0
"""Read timeout beyond the server's wait, for the answer to arrive."""


def create_call(
    agent_id: uuid.UUID | str, user_id: str | None, metadata: dict[str, Any] | None
) -> Call:
    """POST /v1/agents/{id}/sessions."""
    body: dict[str, Any] = {"metadata": metadata or {}}
    if user_id is not None:
        body["user_id"] = user_id
    return Call("POST", f"/v1/agents/{agent_id}/sessions", json=body, headers=new_key())


def page_call(
    agent_id: uuid.UUID | str, user_id: str | None, limit: int, cursor: str | None
) -> Call:
    """GET /v1/agents/{id}/sessions, one page, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if user_id is not None:
        params["user_id"] = user_id
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", f"/v1/agents/{agent_id}/sessions", params=params)


def delete_call(session_id: uuid.UUID | str) -> Call:
    """DELETE /v1/sessions/{id}."""
    return Call("DELETE", f"/v1/sessions/{session_id}")


def messages_call(session_id: uuid.UUID | str, limit: int, cursor: str | None) -> Call:
    """GET /v1/sessions/{id}/messages, one page."""
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", f"/v1/sessions/{session_id}/messages", params=params)


def message_call(
    session_id: uuid.UUID | str,
    content: str,
    *,
    queue: bool,
    metadata: dict[str, Any] | None,
    idempotency_key: str | None,
    webhook_url: str | None,
    **mode: Any,
) -> Call:
    """POST /v1/sessions/{id}/messages, always with an Idempotency-Key, so that a retry
    returns the run the first attempt created instead of starting a second one."""
    body = {"content": content, "queue": queue, "metadata": metadata or {}, **mode}
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    return Call("POST", f"/v1/sessions/{session_id}/messages", json=body, headers=headers)


def wait_call(
    session_id: uuid.UUID | str,
    content: str,
    *,
    timeout_s: float,
    client_timeout: httpx.Timeout,
    queue: bool,
    metadata: dict[str, Any] | None,
    idempotency_key: str | None,
    webhook_url: str | None,
) -> Call:
    """The message POST with `wait`, its read timeout long enough for the server's wait."""
    server_wait = max(0.1, min(timeout_s, MAX_SERVER_WAIT_S))
    call = message_call(
        session_id,
        content,
        queue=queue,
        metadata=metadata,
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
        wait=True,
        timeout_s=server_wait,
    )
    timeout = with_read(client_timeout, server_wait + WAIT_SLACK_S)
    return dataclasses.replace(call, timeout=timeout)


def stream_state(
    session_id: uuid.UUID | str,
    content: str,
    *,
    client_timeout: httpx.Timeout,
    queue: bool,
    metadata: dict[str, Any] | None,
    idempotency_key: str | None,
    webhook_url: str | None,
) -> stream.Follow:
    """A follower whose opening is the message POST with `stream`."""
    opening = message_call(
        session_id,
        content,
        queue=queue,
        metadata=metadata,
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
        stream=True,
    )
    return stream.Follow(opening=opening, timeout=client_timeout)


class Sessions:
    """Conversations with agents, and the messages that start runs."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: uuid.UUID | str,
        *,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Start a conversation with an agent; `user_id` scopes long-term memory."""
        response = self._http.send(create_call(agent_id, user_id, metadata))
        return Session.model_validate(response.json())

    def page(
        self,
        agent_id: uuid.UUID | str,
        *,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        """One page of the agent's sessions (`user_id`'s only, if given), newest first."""
        response = self._http.send(page_call(agent_id, user_id, limit, cursor))
        return Page[Session].model_validate(response.json())

    def list(
        self, agent_id: uuid.UUID | str, *, user_id: str | None = None, limit: int = 50
    ) -> Iterator[Session]:
        """Every session of the agent (`user_id`'s only, if given), newest first, fetched
        `limit` (1-100) per request."""
        cursor: str | None = None
        while True:
            page = self.page(agent_id, user_id=user_id, limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, session_id: uuid.UUID | str) -> Session:
        """One session."""
        response = self._http.send(Call("GET", f"/v1/sessions/{session_id}"))
        return Session.model_validate(response.json())

    def delete(self, session_id: uuid.UUID | str) -> ErasedCounts:
        """Delete a session with its messages, runs (their steps, tool calls and events) and
        the memories written in it, in one transaction; a run in flight stops. Returns how
        many rows of each kind went."""
        response = self._http.send(delete_call(session_id))
        return ErasedCounts.model_validate(response.json()["erased"])

    def messages(self, session_id: uuid.UUID | str, *, limit: int = 50) -> Iterator[Message]:
        """Every message of the session, oldest first, fetched `limit` per request."""
        cursor: str | None = None
        while True:
            response = self._http.send(messages_call(session_id, limit, cursor))
            page = Page[Message].model_validate(response.json())
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def runs(self, session_id: uuid.UUID | str, *, limit: int = 50) -> builtins.list[Run]:
        """The session's latest `limit` runs, newest first."""
        call = Call("GET", f"/v1/sessions/{session_id}/runs", params={"limit": limit})
        return Page[Run].model_validate(self._http.send(call).json()).data

    def send(
        self,
        session_id: uuid.UUID | str,
        content: str,
        *,
        timeout_s: float = 300.0,
        queue: bool = False,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> Run:
        """Send a user message and return its run once finished, or once it waits for a
        human's approval (`required_action`); `RunTimeoutError` (with the run as it stands) if
        neither within `timeout_s` seconds. `ConflictError` if the
        session is busy, unless `queue` (run after the active one). With `webhook_url`, the
        run's events (run.succeeded, run.requires_action, ...) are POSTed there too, signed
        with the tenant's request signing key (`client.webhooks.rotate_request_secret()`)."""
        deadline = time.monotonic() + timeout_s
        call = wait_call(
            session_id,
            content,
            timeout_s=timeout_s,
            client_timeout=self._http.client.timeout,
            queue=queue,
            metadata=metadata,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )
        run = Run.model_validate(self._http.send(call).json())
        left = deadline - time.monotonic()
        if run.finished or run.status == "requires_action":
            return run
        if left <= 0:
            raise RunTimeoutError(run, timeout_s)
        return stream.wait(self._http, run.id, left)

    def stream(
        self,
        session_id: uuid.UUID | str,
        content: str,
        *,
        queue: bool = False,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> stream.EventStream:
        """Send a user message and follow its run's typed events to the final one,
        reconnecting with Last-Event-ID if the connection drops (`webhook_url`: see
        `send`)."""
        state = stream_state(
            session_id,
            content,
            client_timeout=self._http.client.timeout,
            queue=queue,
            metadata=metadata,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )
        return stream.EventStream(self._http, state)


class AsyncSessions:
    """Conversations with agents, and the messages that start runs (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: uuid.UUID | str,
        *,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Start a conversation with an agent; `user_id` scopes long-term memory."""
        response = await self._http.send(create_call(agent_id, user_id, metadata))
        return Session.model_validate(response.json())

    async def page(
        self,
        agent_id: uuid.UUID | str,
        *,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        """One page of the agent's sessions (`user_id`'s only, if given), newest first."""
        response = await self._http.send(page_call(agent_id, user_id, limit, cursor))
        return Page[Session].model_validate(response.json())

    async def list(
        self, agent_id: uuid.UUID | str, *, user_id: str | None = None, limit: int = 50
    ) -> AsyncIterator[Session]:
        """Every session of the agent (`user_id`'s only, if given), newest first, fetched
        `limit` (1-100) per request."""
        cursor: str | None = None
        while True:
            page = await self.page(agent_id, user_id=user_id, limit=limit, cursor=cursor)
            for session in page.data:
                yield session
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, session_id: uuid.UUID | str) -> Session:
        """One session."""
        response = await self._http.send(Call("GET", f"/v1/sessions/{session_id}"))
        return Session.model_validate(response.json())

    async def delete(self, session_id: uuid.UUID | str) -> ErasedCounts:
        """Delete a session with everything under it (see `Sessions.delete`)."""
        response = await self._http.send(delete_call(session_id))
        return ErasedCounts.model_validate(response.json()["erased"])

    async def messages(
        self, session_id: uuid.UUID | str, *, limit: int = 50
    ) -> AsyncIterator[Message]:
        """Every message of the session, oldest first, fetched `limit` per request."""
        cursor: str | None = None
        while True:
            response = await self._http.send(messages_call(session_id, limit, cursor))
            page = Page[Message].model_validate(response.json())
            for message in page.data:
                yield message
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def runs(self, session_id: uuid.UUID | str, *, limit: int = 50) -> builtins.list[Run]:
        """The session's latest `limit` runs, newest first."""
        call = Call("GET", f"/v1/sessions/{session_id}/runs", params={"limit": limit})
        return Page[Run].model_validate((await self._http.send(call)).json()).data

    async def send(
        self,
        session_id: uuid.UUID | str,
        content: str,
        *,
        timeout_s: float = 300.0,
        queue: bool = False,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> Run:
        """Send a user message and return its run once finished (see `Sessions.send`)."""
        deadline = time.monotonic() + timeout_s
        call = wait_call(
            session_id,
            content,
            timeout_s=timeout_s,
            client_timeout=self._http.client.timeout,
            queue=queue,
            metadata=metadata,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )
        run = Run.model_validate((await self._http.send(call)).json())
        left = deadline - time.monotonic()
        if run.finished or run.status == "requires_action":
            return run
        if left <= 0:
            raise RunTimeoutError(run, timeout_s)
        return await stream.wait_async(self._http, run.id, left)

    def stream(
        self,
        session_id: uuid.UUID | str,
        content: str,
        *,
        queue: bool = False,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> stream.AsyncEventStream:
        """Send a user message and follow its run's typed events (see `Sessions.stream`)."""
        state = stream_state(
            session_id,
            content,
            client_timeout=self._http.client.timeout,
            queue=queue,
            metadata=metadata,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )
        return stream.AsyncEventStream(self._http, state)
