"""One asyncio event loop in a background thread, shared by a worker's run threads.

A worker executes each run in a thread of its pool with plain, blocking database code; model
calls and tools are coroutines. Running them all on one long-lived loop (instead of an
`asyncio.run` per call) lets them share the model client's connection pool, and gives the run
thread a handle (`Call`) it can wait on while it heartbeats, cancel, and wait on again until the
coroutine has really ended: a cancelled future says nothing about whether the coroutine is
still cleaning up, or still running because it has not been scheduled yet.

Deployers' sync tools run on `ToolThreads`, not on the loop's default executor that the memory
tools use: Python cannot stop a thread, so a sync tool past its time limit keeps its thread,
and a few such hung calls would otherwise take every thread of the shared pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agents.errors import ToolError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAX_HUNG_TOOLS = 8
"""Sync tool calls that may outlive their time limit (hung) in one worker process at once."""


class Call(Generic[T]):
    """A coroutine running on the portal's loop, seen from another thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> None:
        self._loop = loop
        self._future: Future[T] = Future()
        self._ended = threading.Event()
        self._task: asyncio.Task[T] | None = None
        self._cancelled = False  # read and written on the loop thread only
        # The caller's context variables (its trace span, its log ids) go with the coroutine.
        self._context = contextvars.copy_context()
        loop.call_soon_threadsafe(self._start, coro)

    def _start(self, coro: Coroutine[Any, Any, T]) -> None:
        if self._cancelled:  # cancelled before it was scheduled: it never runs at all
            coro.close()
            self._future.cancel()
            self._ended.set()
            return
        self._task = self._loop.create_task(coro, context=self._context)
        self._task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            self._future.cancel()
        elif (error := task.exception()) is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(task.result())
        self._ended.set()

    def _cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    def result(self, timeout: float | None = None) -> T:
        """Its result (or exception); `concurrent.futures.TimeoutError` if not done in time."""
        return self._future.result(timeout)

    def cancel(self) -> None:
        """Ask the coroutine to stop (a CancelledError inside it); a no-op once it has ended."""
        if not self._ended.is_set():
            self._loop.call_soon_threadsafe(self._cancel)

    def wait_ended(self, timeout: float | None = None) -> bool:
        """Block until the coroutine has returned, raised or finished cancelling; False when
        `timeout` passed first. A sync tool's thread (`asyncio.to_thread`) is not part of it:
        Python cannot stop a thread, and its eventual result is dropped."""
        return self._ended.wait(timeout)

    def ended(self) -> bool:
        """Whether the coroutine has ended."""
        return self._ended.is_set()


@dataclass
class _Job:
    """One sync call on the tool threads (its fields are guarded by the ToolThreads lock)."""

    tool: str
    """The tool's name, for the log."""
    done: bool = False
    """The function has returned or raised."""
    abandoned: bool = False
    """Its caller stopped waiting (timeout, cancel) while it still ran: it is hung."""


class ToolThreads:
    """Where sync tools run: a daemon thread per call (a hung one never holds up the process's
    exit), at most `max_hung` of them hung at a time. A call whose caller stops waiting while
    its function still runs is hung until the function returns, if ever; while `max_hung` are,
    a new call is refused with a ToolError the model reads, rather than queued behind them or
    given yet another thread. Calls that are not hung are bounded by the worker's run threads
    times `run_tool_concurrency` (a run's calls of one reply run together); the check is made
    as a call starts, so calls started together may take the count past `max_hung` by at most
    that many."""

    def __init__(self, max_hung: int = DEFAULT_MAX_HUNG_TOOLS, name: str = "agentmill-tool"):
        if max_hung < 1:
            raise ValueError("max_hung must be at least 1")
        self.max_hung = max_hung
        self._name = name
        self._lock = threading.Lock()
        self._hung = 0

    @property
    def hung(self) -> int:
        """Calls whose caller gave up while their thread still runs."""
        with self._lock:
            return self._hung

    async def run(self, tool: str, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` in a thread of its own, awaited; cancelling the await
        leaves the thread running (counted as hung). ToolError when `max_hung` calls are."""
        with self._lock:
            hung = self._hung
        if hung >= self.max_hung:
            log.warning(
                "tool %r refused: %d sync tool calls are hung, the most allowed", tool, hung
            )
            raise ToolError(
                f"too many hung tool calls: {hung} earlier calls of sync tools ran past their "
                "time limit and still hold their threads; this call was not run, try again "
                "later",
                tool=tool,
            )
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = loop.create_future()
        job = _Job(tool)
        context = contextvars.copy_context()  # as asyncio.to_thread does

        def work() -> None:
            try:
                result = context.run(function, *args, **kwargs)
            except BaseException as exc:  # handed to the awaiting coroutine, as to_thread does
                self._ended(job)
                _deliver(loop, outcome, functools.partial(outcome.set_exception, exc))
            else:
                self._ended(job)
                _deliver(loop, outcome, functools.partial(outcome.set_result, result))

        threading.Thread(target=work, name=f"{self._name}-{tool}", daemon=True).start()
        try:
            return await outcome
        except asyncio.CancelledError:
            self._abandon(job)
            raise

    def _abandon(self, job: _Job) -> None:
        with self._lock:
            if job.done:
                return
            job.abandoned = True
            self._hung += 1
            hung = self._hung
        log.warning(
            "sync tool %r ran past its time limit; its thread runs on (%d of %d hung calls "
            "allowed)",
            job.tool,
            hung,
            self.max_hung,
        )

    def _ended(self, job: _Job) -> None:
        with self._lock:
            job.done = True
            if not job.abandoned:
                return
            self._hung -= 1
        log.info("hung call of sync tool %r has ended after all", job.tool)


def _deliver(
    loop: asyncio.AbstractEventLoop, outcome: asyncio.Future[Any], set_it: Callable[[], None]
) -> None:
    """Settle `outcome` on its loop, unless its waiter has gone (cancelled, loop closed)."""

    def settle() -> None:
        if not outcome.done():
            set_it()

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)


class Portal:
    """An event loop running in a daemon thread until `close`, and the threads its sync tools
    run on (`tool_threads`)."""

    def __init__(
        self, name: str = "agentmill-portal", *, max_hung_tools: int = DEFAULT_MAX_HUNG_TOOLS
    ) -> None:
        self.tool_threads = ToolThreads(max_hung_tools)
        """Deployers' sync tools run here, apart from the default executor of the loop."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, coro: Coroutine[Any, Any, T]) -> Call[T]:
        """Run the coroutine on the loop; the Call can be waited on and cancelled."""
        return Call(self._loop, coro)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run the coroutine on the loop and wait for its result."""
        return self.start(coro).result(timeout)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
