"""Reading a batch's results: streamed JSONL, one finished item per line, resumed after a
dropped connection.

`ResultsFollow` is the state (no I/O): the positions already yielded and how to ask for the
rest. The server sends every finished item again on a new request, so a reconnect skips those
seen; empty lines (the keep-alives of a `wait` stream) are skipped too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from agentmill._http import HTTP, AsyncHTTP, Call, reraise, with_read
from agentmill.batch_models import BatchResult
from agentmill.errors import AgentmillAPIError
from agentmill.retry import RetryPolicy

WAIT_READ_S = 45.0
"""Shortest read timeout of a `wait` stream: the server sends an empty line every 15 s."""


@dataclass
class ResultsFollow:
    """Where a read of a batch's results stands."""

    batch_id: uuid.UUID | str
    wait: bool
    """Follow the batch until it has ended, not only what has finished so far."""
    timeout: httpx.Timeout
    """The client's timeouts; the read timeout is stretched for a `wait` stream."""
    seen: set[int] = field(default_factory=set)
    """Positions already yielded."""
    failures: int = 0
    """Reconnects in a row without a new result."""

    def call(self) -> Call:
        """The request for the results (all finished ones; the seen are skipped on arrival)."""
        params: dict[str, str | int] = {"wait": "true"} if self.wait else {}
        timeout = self.timeout
        if self.wait and timeout.read is not None:
            timeout = with_read(timeout, max(timeout.read, WAIT_READ_S))
        return Call("GET", f"/v1/batches/{self.batch_id}/results", params=params, timeout=timeout)

    def accept(self, line: str) -> BatchResult | None:
        """The result on `line`, or None for a keep-alive or a result already yielded."""
        if not line.strip():
            return None
        result = BatchResult.model_validate_json(line)
        if result.position in self.seen:
            return None
        self.seen.add(result.position)
        self.failures = 0
        return result

    def failed(self, error: Exception, policy: RetryPolicy) -> float | None:
        """Count a failed read: seconds to wait before reading again, or None to give up."""
        delay = policy.after_failure(self.failures, error, idempotent=True)
        self.failures += 1
        return delay


def follow_results(http: HTTP, state: ResultsFollow) -> Generator[BatchResult, None, None]:
    """The results of `state`'s batch until the server ends the stream."""
    while True:
        try:
            with http.stream(state.call()) as response:
                for line in response.iter_lines():
                    result = state.accept(line)
                    if result is not None:
                        yield result
            return
        except (httpx.TransportError, AgentmillAPIError) as exc:
            delay = state.failed(exc, http.retry)
            if delay is None:
                reraise(exc)
        http.sleep(delay)


async def follow_results_async(
    http: AsyncHTTP, state: ResultsFollow
) -> AsyncGenerator[BatchResult, None]:
    """The results of `state`'s batch until the server ends the stream."""
    while True:
        try:
            async with http.stream(state.call()) as response:
                async for line in response.aiter_lines():
                    result = state.accept(line)
                    if result is not None:
                        yield result
            return
        except (httpx.TransportError, AgentmillAPIError) as exc:
            delay = state.failed(exc, http.retry)
            if delay is None:
                reraise(exc)
        await http.sleep(delay)


class BatchResultStream:
    """A batch's finished items: those finished so far in position order, then (with `wait`)
    each as it finishes; iterate it, close it (or leave its `with` block) to stop early."""

    def __init__(self, http: HTTP, state: ResultsFollow) -> None:
        self._results = follow_results(http, state)

    def __iter__(self) -> BatchResultStream:
        return self

    def __next__(self) -> BatchResult:
        return next(self._results)

    def close(self) -> None:
        """Stop reading and close the connection."""
        self._results.close()

    def __enter__(self) -> BatchResultStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncBatchResultStream:
    """A batch's finished items; `async for` it, `aclose` it to stop early."""

    def __init__(self, http: AsyncHTTP, state: ResultsFollow) -> None:
        self._results = follow_results_async(http, state)

    def __aiter__(self) -> AsyncBatchResultStream:
        return self

    async def __anext__(self) -> BatchResult:
        return await anext(self._results)

    async def aclose(self) -> None:
        """Stop reading and close the connection."""
        await self._results.aclose()

    async def __aenter__(self) -> AsyncBatchResultStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
