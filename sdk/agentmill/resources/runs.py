"""`client.runs`: list (filtered), get, steps, events (SSE, resumable), wait, cancel,
approve."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

from agentmill import stream
from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.models import Decision, Page, Run, RunStatus, Step


def cancel_call(run_id: uuid.UUID | str) -> Call:
    """POST /v1/runs/{id}/cancel. Marked idempotent although it carries no Idempotency-Key:
    the server documents cancel as safe to repeat (a finished run comes back unchanged)."""
    return Call("POST", f"/v1/runs/{run_id}/cancel", idempotent=True)


def approve_call(run_id: uuid.UUID | str, decisions: Sequence[Decision]) -> Call:
    """POST /v1/runs/{id}/approvals, with an Idempotency-Key: a retry gets the first
    answer (without one, a second delivery of a decision would be a 409)."""
    body = {"decisions": [d.model_dump(exclude_none=True) for d in decisions]}
    return Call("POST", f"/v1/runs/{run_id}/approvals", json=body, headers=new_key())


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing keeps; None matches any."""

    status: RunStatus | None = None
    agent_id: uuid.UUID | str | None = None
    user_id: str | None = None
    session_id: uuid.UUID | str | None = None
    batch_id: uuid.UUID | str | None = None

    def call(self, limit: int, cursor: str | None) -> Call:
        """GET /v1/runs, one page."""
        params: dict[str, str | int] = {"limit": limit}
        for name in ("status", "agent_id", "user_id", "session_id", "batch_id"):
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value)
        if cursor is not None:
            params["cursor"] = cursor
        return Call("GET", "/v1/runs", params=params)


class Runs:
    """Runs: executions of an agent on one user message."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def page(
        self, where: RunFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Run]:
        """One page of the tenant's runs matching `where`, newest first."""
        response = self._http.send((where or RunFilter()).call(limit, cursor))
        return Page[Run].model_validate(response.json())

    def list(self, where: RunFilter | None = None, *, limit: int = 50) -> Iterator[Run]:
        """Every run matching `where` (status, agent, end user, session, batch), newest
        first, fetched `limit` per request as iteration goes."""
        cursor: str | None = None
        while True:
            page = self.page(where, limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, run_id: uuid.UUID | str) -> Run:
        """The run's status, output, usage and error."""
        return Run.model_validate(self._http.send(stream.run_call(run_id)).json())

    def steps(self, run_id: uuid.UUID | str) -> builtins.list[Step]:
        """The run's model calls in order, with their tool calls and recorded context."""
        response = self._http.send(Call("GET", f"/v1/runs/{run_id}/steps"))
        return Page[Step].model_validate(response.json()).data

    def events(self, run_id: uuid.UUID | str, *, after: int = 0) -> stream.EventStream:
        """The run's typed events after `after`, replayed then live, to the final one."""
        state = stream.following(self._http.client.timeout, run_id, after)
        return stream.EventStream(self._http, state)

    def wait(self, run_id: uuid.UUID | str, *, timeout_s: float = 300.0) -> Run:
        """The run once finished or waiting for approval (`required_action`);
        `RunTimeoutError` if neither within `timeout_s` seconds."""
        return stream.wait(self._http, run_id, timeout_s)

    def cancel(self, run_id: uuid.UUID | str) -> Run:
        """Stop the run: a queued one ends now, a running one at its next check."""
        return Run.model_validate(self._http.send(cancel_call(run_id)).json())

    def approve(self, run_id: uuid.UUID | str, decisions: Sequence[Decision]) -> Run:
        """Decide on calls a `requires_action` run waits for (`Decision.approve/deny/edit`);
        the run goes on once none is pending. `ConflictError` for a run not waiting or a
        call decided already, `ValidationError` for an edit that does not fit the schema."""
        return Run.model_validate(self._http.send(approve_call(run_id, decisions)).json())


class AsyncRuns:
    """Runs: executions of an agent on one user message (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def page(
        self, where: RunFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Run]:
        """One page of the tenant's runs matching `where`, newest first."""
        response = await self._http.send((where or RunFilter()).call(limit, cursor))
        return Page[Run].model_validate(response.json())

    async def list(self, where: RunFilter | None = None, *, limit: int = 50) -> AsyncIterator[Run]:
        """Every run matching `where`, newest first (see `Runs.list`)."""
        cursor: str | None = None
        while True:
            page = await self.page(where, limit=limit, cursor=cursor)
            for run in page.data:
                yield run
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, run_id: uuid.UUID | str) -> Run:
        """The run's status, output, usage and error."""
        return Run.model_validate((await self._http.send(stream.run_call(run_id))).json())

    async def steps(self, run_id: uuid.UUID | str) -> builtins.list[Step]:
        """The run's model calls in order, with their tool calls and recorded context."""
        response = await self._http.send(Call("GET", f"/v1/runs/{run_id}/steps"))
        return Page[Step].model_validate(response.json()).data

    def events(self, run_id: uuid.UUID | str, *, after: int = 0) -> stream.AsyncEventStream:
        """The run's typed events after `after`, replayed then live, to the final one."""
        state = stream.following(self._http.client.timeout, run_id, after)
        return stream.AsyncEventStream(self._http, state)

    async def wait(self, run_id: uuid.UUID | str, *, timeout_s: float = 300.0) -> Run:
        """The run once finished or waiting for approval (`required_action`);
        `RunTimeoutError` if neither within `timeout_s` seconds."""
        return await stream.wait_async(self._http, run_id, timeout_s)

    async def cancel(self, run_id: uuid.UUID | str) -> Run:
        """Stop the run: a queued one ends now, a running one at its next check."""
        return Run.model_validate((await self._http.send(cancel_call(run_id))).json())

    async def approve(self, run_id: uuid.UUID | str, decisions: Sequence[Decision]) -> Run:
        """Decide on calls a `requires_action` run waits for (see `Runs.approve`)."""
        response = await self._http.send(approve_call(run_id, decisions))
        return Run.model_validate(response.json())
