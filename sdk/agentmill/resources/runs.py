"""`client.runs`: get, steps, events (SSE, resumable), wait, cancel, approve."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from agentmill import stream
from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.models import Decision, Page, Run, Step


def cancel_call(run_id: uuid.UUID | str) -> Call:
    """POST /v1/runs/{id}/cancel. Marked idempotent although it carries no Idempotency-Key:
    the server documents cancel as safe to repeat (a finished run comes back unchanged)."""
    return Call("POST", f"/v1/runs/{run_id}/cancel", idempotent=True)


def approve_call(run_id: uuid.UUID | str, decisions: Sequence[Decision]) -> Call:
    """POST /v1/runs/{id}/approvals, with an Idempotency-Key: a retry gets the first
    answer (without one, a second delivery of a decision would be a 409)."""
    body = {"decisions": [d.model_dump(exclude_none=True) for d in decisions]}
    return Call("POST", f"/v1/runs/{run_id}/approvals", json=body, headers=new_key())


class Runs:
    """Runs: executions of an agent on one user message."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def get(self, run_id: uuid.UUID | str) -> Run:
        """The run's status, output, usage and error."""
        return Run.model_validate(self._http.send(stream.run_call(run_id)).json())

    def steps(self, run_id: uuid.UUID | str) -> list[Step]:
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

    async def get(self, run_id: uuid.UUID | str) -> Run:
        """The run's status, output, usage and error."""
        return Run.model_validate((await self._http.send(stream.run_call(run_id))).json())

    async def steps(self, run_id: uuid.UUID | str) -> list[Step]:
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
