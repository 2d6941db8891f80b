"""`client.batches`: create (items, or a JSONL upload), get, list, wait (with progress),
results (streamed), cancel."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.batch_models import Batch
from agentmill.batch_results import AsyncBatchResultStream, BatchResultStream, ResultsFollow
from agentmill.errors import BatchTimeoutError
from agentmill.models import Page

JSONL = "application/x-ndjson"

Progress = Callable[[Batch], None]
"""Called by `wait` with the batch, first as it is, then each time its counts change."""


class BatchItemParams(TypedDict):
    """One input of a batch as sent: a user message run in a session of its own."""

    input: str
    user_id: NotRequired[str]
    """The end user of its session (scopes long-term memory)."""
    metadata: NotRequired[dict[str, Any]]
    """Kept on the item and its run; returned with its result."""


def create_call(
    agent_id: uuid.UUID | str,
    items: Sequence[str | BatchItemParams],
    *,
    concurrency: int | None,
    max_attempts: int | None,
    metadata: dict[str, Any] | None,
    webhook_url: str | None,
) -> Call:
    """POST /v1/batches as JSON; a plain string is an item with only an input."""
    body: dict[str, Any] = {
        "agent_id": str(agent_id),
        "items": [{"input": item} if isinstance(item, str) else dict(item) for item in items],
    }
    if concurrency is not None:
        body["concurrency"] = concurrency
    if max_attempts is not None:
        body["max_attempts"] = max_attempts
    if metadata is not None:
        body["metadata"] = metadata
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    return Call("POST", "/v1/batches", json=body, headers=new_key())


def upload_call(
    agent_id: uuid.UUID | str,
    jsonl: bytes | os.PathLike[str],
    *,
    concurrency: int | None,
    max_attempts: int | None,
    webhook_url: str | None,
) -> Call:
    """POST /v1/batches with a JSONL body (the bytes, or a file's), the options as query
    parameters."""
    content = jsonl if isinstance(jsonl, bytes) else Path(jsonl).read_bytes()
    params: dict[str, str | int] = {"agent_id": str(agent_id)}
    if concurrency is not None:
        params["concurrency"] = concurrency
    if max_attempts is not None:
        params["max_attempts"] = max_attempts
    if webhook_url is not None:
        params["webhook_url"] = webhook_url
    headers = {"Content-Type": JSONL, **new_key()}
    return Call("POST", "/v1/batches", content=content, params=params, headers=headers)


def page_call(limit: int, cursor: str | None) -> Call:
    """GET /v1/batches, one page."""
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", "/v1/batches", params=params)


def cancel_call(batch_id: uuid.UUID | str) -> Call:
    """POST /v1/batches/{id}/cancel: safe to repeat (a finished batch comes back unchanged)."""
    return Call("POST", f"/v1/batches/{batch_id}/cancel", idempotent=True)


def progressed(before: Batch | None, now: Batch) -> bool:
    """Whether `now` is news since `before` (its counts or status changed)."""
    return before is None or (before.counts, before.status) != (now.counts, now.status)


class Batches:
    """Batches: many inputs run on one agent in the background."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: uuid.UUID | str,
        items: Sequence[str | BatchItemParams],
        *,
        concurrency: int | None = None,
        max_attempts: int | None = None,
        metadata: dict[str, Any] | None = None,
        webhook_url: str | None = None,
    ) -> Batch:
        """Start a batch of `items` (1-1000), each run in a session of its own, at most
        `concurrency` (server default 4) at a time, each tried up to `max_attempts` (2)
        times. Sent with an Idempotency-Key: a retry returns the batch first created. With
        `webhook_url`, the batch's end (batch.completed, batch.cancelled) is POSTed there,
        signed with the tenant's request signing key (`webhooks.rotate_request_secret()`)."""
        call = create_call(
            agent_id,
            items,
            concurrency=concurrency,
            max_attempts=max_attempts,
            metadata=metadata,
            webhook_url=webhook_url,
        )
        return Batch.model_validate(self._http.send(call).json())

    def upload(
        self,
        agent_id: uuid.UUID | str,
        jsonl: bytes | os.PathLike[str],
        *,
        concurrency: int | None = None,
        max_attempts: int | None = None,
        webhook_url: str | None = None,
    ) -> Batch:
        """Start a batch from JSONL, one item object per line: the bytes, or a file's path.
        A bad line is an `UnprocessableEntityError` whose `param` names it ("line 3", or
        "line 3.input"), and nothing is created."""
        call = upload_call(
            agent_id,
            jsonl,
            concurrency=concurrency,
            max_attempts=max_attempts,
            webhook_url=webhook_url,
        )
        return Batch.model_validate(self._http.send(call).json())

    def get(self, batch_id: uuid.UUID | str) -> Batch:
        """A batch's status, counts per item state and usage."""
        response = self._http.send(Call("GET", f"/v1/batches/{batch_id}"))
        return Batch.model_validate(response.json())

    def page(self, *, limit: int = 50, cursor: str | None = None) -> Page[Batch]:
        """One page of batches, newest first."""
        return Page[Batch].model_validate(self._http.send(page_call(limit, cursor)).json())

    def list(self, *, limit: int = 50) -> Iterator[Batch]:
        """Every batch, newest first, fetched `limit` per request as iteration goes."""
        cursor: str | None = None
        while True:
            page = self.page(limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def wait(
        self,
        batch_id: uuid.UUID | str,
        *,
        on_progress: Progress | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> Batch:
        """The batch once it has ended, read every `poll_s` seconds; `on_progress` hears each
        change of its counts. `BatchTimeoutError` (with the batch as it stands) if it has not
        ended within `timeout_s`; the batch goes on either way."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        before: Batch | None = None
        while True:
            batch = self.get(batch_id)
            if on_progress is not None and progressed(before, batch):
                on_progress(batch)
            before = batch
            if batch.finished:
                return batch
            if deadline is not None and time.monotonic() >= deadline:
                raise BatchTimeoutError(batch, timeout_s or 0.0)
            left = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
            self._http.sleep(max(0.0, left))

    def results(self, batch_id: uuid.UUID | str, *, wait: bool = False) -> BatchResultStream:
        """The batch's finished items as typed results, streamed: those finished so far, or
        with `wait` each as it finishes until the batch has ended."""
        state = ResultsFollow(batch_id, wait, self._http.client.timeout)
        return BatchResultStream(self._http, state)

    def cancel(self, batch_id: uuid.UUID | str) -> Batch:
        """Stop the batch: pending and queued items now, running ones at their next check."""
        return Batch.model_validate(self._http.send(cancel_call(batch_id)).json())


class AsyncBatches:
    """Batches: many inputs run on one agent in the background (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: uuid.UUID | str,
        items: Sequence[str | BatchItemParams],
        *,
        concurrency: int | None = None,
        max_attempts: int | None = None,
        metadata: dict[str, Any] | None = None,
        webhook_url: str | None = None,
    ) -> Batch:
        """Start a batch of `items` (see `Batches.create`)."""
        call = create_call(
            agent_id,
            items,
            concurrency=concurrency,
            max_attempts=max_attempts,
            metadata=metadata,
            webhook_url=webhook_url,
        )
        return Batch.model_validate((await self._http.send(call)).json())

    async def upload(
        self,
        agent_id: uuid.UUID | str,
        jsonl: bytes | os.PathLike[str],
        *,
        concurrency: int | None = None,
        max_attempts: int | None = None,
        webhook_url: str | None = None,
    ) -> Batch:
        """Start a batch from JSONL: the bytes, or a file's path (see `Batches.upload`)."""
        call = upload_call(
            agent_id,
            jsonl,
            concurrency=concurrency,
            max_attempts=max_attempts,
            webhook_url=webhook_url,
        )
        return Batch.model_validate((await self._http.send(call)).json())

    async def get(self, batch_id: uuid.UUID | str) -> Batch:
        """A batch's status, counts per item state and usage."""
        response = await self._http.send(Call("GET", f"/v1/batches/{batch_id}"))
        return Batch.model_validate(response.json())

    async def page(self, *, limit: int = 50, cursor: str | None = None) -> Page[Batch]:
        """One page of batches, newest first."""
        response = await self._http.send(page_call(limit, cursor))
        return Page[Batch].model_validate(response.json())

    async def list(self, *, limit: int = 50) -> AsyncIterator[Batch]:
        """Every batch, newest first, fetched `limit` per request as iteration goes."""
        cursor: str | None = None
        while True:
            page = await self.page(limit=limit, cursor=cursor)
            for batch in page.data:
                yield batch
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def wait(
        self,
        batch_id: uuid.UUID | str,
        *,
        on_progress: Progress | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> Batch:
        """The batch once it has ended (see `Batches.wait`)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        before: Batch | None = None
        while True:
            batch = await self.get(batch_id)
            if on_progress is not None and progressed(before, batch):
                on_progress(batch)
            before = batch
            if batch.finished:
                return batch
            if deadline is not None and time.monotonic() >= deadline:
                raise BatchTimeoutError(batch, timeout_s or 0.0)
            left = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
            await self._http.sleep(max(0.0, left))

    def results(self, batch_id: uuid.UUID | str, *, wait: bool = False) -> AsyncBatchResultStream:
        """The batch's finished items as typed results, streamed (see `Batches.results`)."""
        state = ResultsFollow(batch_id, wait, self._http.client.timeout)
        return AsyncBatchResultStream(self._http, state)

    async def cancel(self, batch_id: uuid.UUID | str) -> Batch:
        """Stop the batch: pending and queued items now, running ones at their next check."""
        return Batch.model_validate((await self._http.send(cancel_call(batch_id))).json())
