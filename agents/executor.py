"""The step loop: execute one run, durably, resuming where an earlier attempt stopped.

For each step the loop builds the context, calls the model, lets `decide` (pure) choose, and
persists the model output before acting on it; each tool call's result is persisted under its
id when it finishes. A worker that dies mid-run leaves a lapsed lease; the next worker that
claims the run reloads the steps, runs only the tool calls without a result, and carries on.

While it waits on the model or a tool, the loop renews its lease and checks for a cancel:
a cancel aborts an in-flight model call, and otherwise takes effect between steps.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import Engine

from agents import agent_store, batches, run_store
from agents.context import Clock, SystemClock, ToolContext, ToolServices
from agents.decide import (
    Decision,
    EmptyOutput,
    Failed,
    FinalAnswer,
    MaxStepsReached,
    RunState,
    RunTools,
    ToolArgumentError,
    advance,
    decide,
)
from agents.errors import LeaseLost, ToolError
from agents.events import append_event
from agents.portal import Portal
from agents.prompt import Messages
from agents.records import Agent, ChatSession, Run, Step, ToolCallRecord, Usage
from agents.run_context import ContextBuilder
from agents.run_store import StepWrite
from agents.tools import ToolRegistry
from core.config import Settings
from core.db import transaction
from core.errors import AgentmillError
from inference.model_client import ChatRequest, ChatResult, ModelClient
from memory.records import NewMemory
from memory.service import MemoryStore

log = logging.getLogger(__name__)
T = TypeVar("T")
DELTA_FLUSH_S = 0.1


class RunCancelled(Exception):
    """A cancel was requested while the loop waited (internal control flow)."""


@dataclass
class Services:
    """What the loop needs, injected once per worker process."""

    engine: Engine
    model: ModelClient
    tools: ToolRegistry
    portal: Portal
    settings: Settings
    memory: MemoryStore | None = None
    clock: Clock = field(default_factory=SystemClock)
    enqueue_run: Callable[[uuid.UUID], None] = lambda run_id: None
    """Sends a run to the queue (the next one of a session when this one ends)."""
    after_run: Callable[[uuid.UUID], None] = lambda run_id: None
    """Called once a run has succeeded (enqueues fact extraction)."""


class _Deltas:
    """Text pieces from the model's stream, gathered on the loop thread, flushed by the run's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[str] = []

    def add(self, piece: str) -> None:
        with self._lock:
            self._pieces.append(piece)

    def take(self) -> str:
        with self._lock:
            text, self._pieces = "".join(self._pieces), []
        return text


class RunExecutor:
    """Executes runs for one worker process (`owner` names it in leases)."""

    def __init__(self, services: Services, owner: str) -> None:
        self.s = services
        self.owner = owner
        lease = services.settings.run_lease_s
        self._beat_s = min(1.0, lease / 3)

    # -- entry -----------------------------------------------------------------------------

    def execute(self, run_id: uuid.UUID) -> None:
        """Claim the run and take it to its end; a no-op when it is finished or held."""
        settings = self.s.settings
        with transaction(self.s.engine) as session:
            run = run_store.claim(session, run_id, self.owner, settings.run_lease_s)
            if run is None:
                return
            append_event(session, run.tenant_id, run.id, "run.started", {"attempt": run.attempts})
        try:
            if run.attempts > settings.run_max_attempts:
                self._end(
                    run,
                    "failed",
                    stop_reason="worker_lost",
                    error={
                        "type": "worker_lost",
                        "message": f"the run was started {run.attempts - 1} times and never "
                        "finished; it is not tried again",
                    },
                )
            else:
                self._run(run)
        except LeaseLost:
            log.warning("run %s: lease lost; another worker carries on", run_id)
        except RunCancelled:
            self._end(run, "cancelled", stop_reason="cancelled")
        except Exception as exc:
            log.exception("run %s failed with an internal error", run_id)
            self._end(
                run,
                "failed",
                stop_reason="error",
                error={"type": "internal_error", "message": type(exc).__name__},
            )

    # -- the loop --------------------------------------------------------------------------

    def _run(self, run: Run) -> None:
        with transaction(self.s.engine) as session:
            agent = agent_store.get_agent(session, run.tenant_id, run.agent_id)
            chat = agent_store.get_session(session, run.tenant_id, run.session_id)
            steps = run_store.load_steps(session, run.id)
        try:
            tools = self.s.tools.subset(agent.tools)
        except ToolError as exc:
            self._fail(run, "configuration_error", exc.message)
            return
        ctx = ToolContext(
            tenant_id=run.tenant_id,
            agent_id=agent.id,
            user_id=chat.user_id,
            session_id=chat.id,
            run_id=run.id,
            services=ToolServices(clock=self.s.clock, memory=self.s.memory),
        )
        if steps and steps[-1].decision in ("final", "max_steps", "failed"):
            self._conclude(run, agent, chat, steps[-1])  # died between deciding and ending
            return
        if steps and steps[-1].decision == "tools":
            steps[-1] = self._run_tools(run, steps[-1], tools, ctx)
        builder = ContextBuilder(self.s, self._model_call, agent, chat, run)
        last = steps[-1] if steps else None
        state = RunState(
            step=(last.step + 1) if last else 1,
            max_steps=agent.max_steps,
            invalid_attempts=last.invalid_attempts if last else 0,
        )
        while True:  # `steps` is kept up to date here: no reload per step
            offered = tools.schemas() if len(tools) and agent.tool_choice != "none" else []
            messages = builder.messages(steps, tools_schema=offered)
            # `required` holds until the run's first tool call has been made.
            required = bool(offered) and agent.tool_choice == "required"
            required = required and not any(s.decision == "tools" for s in steps)
            state = replace(state, tool_required=required)
            request = ChatRequest(
                model=agent.model,
                messages=messages,
                tools=offered or None,
                tool_choice=("required" if required else "auto") if offered else None,
                temperature=agent.temperature,
                max_tokens=self.s.settings.agent_max_output_tokens,
            )
            self._start_step(run, state.step)
            started = time.monotonic()
            try:
                output = self._model_call(run, request, stream_step=state.step)
            except (RunCancelled, LeaseLost):
                raise
            except Exception as exc:  # provider errors of every kind end the run, not the worker
                log.warning("run %s: model call failed: %r", run.id, exc)
                self._fail(run, "model_error", f"{type(exc).__name__}: {exc}"[:500])
                return
            model_ms = (time.monotonic() - started) * 1000
            decision = decide(state, output, tools)
            step = self._record(run, state, messages, output, decision, model_ms)
            if isinstance(decision, RunTools):
                step = self._run_tools(run, step, tools, ctx)
            steps.append(step)
            if not isinstance(decision, RunTools | ToolArgumentError | EmptyOutput):
                self._conclude(run, agent, chat, step)
                return
            state = advance(state, decision)

    def _record(
        self,
        run: Run,
        state: RunState,
        context: Messages,
        output: ChatResult,
        decision: Decision,
        model_ms: float,
    ) -> Step:
        calls = tuple((c.id, c.name, c.arguments) for c in output.tool_calls)
        results: dict[str, str] | None = None
        invalid = 0
        if isinstance(decision, ToolArgumentError):
            results = {e.call.id: e.message for e in decision.errors}
            invalid = decision.attempt
        elif isinstance(decision, EmptyOutput):
            invalid = decision.attempt
        recorded: dict[str, Any] = {
            "content": output.content,
            "tool_calls": [{"id": c, "name": n, "arguments": a} for c, n, a in calls],
            "finish_reason": output.finish_reason,
            "model": output.model,
        }
        if isinstance(decision, Failed):
            recorded["failure"] = decision.reason
        if isinstance(decision, EmptyOutput):
            recorded["retry_message"] = decision.message
        write = StepWrite(
            step=state.step,
            context=context,
            output=recorded,
            decision=_DECISION_NAMES[type(decision)],
            invalid_attempts=invalid,
            usage=Usage(
                output.usage.prompt_tokens, output.usage.completion_tokens, output.usage.cost_usd
            ),
            model_ms=model_ms,
            calls=calls if isinstance(decision, RunTools | ToolArgumentError) else (),
            results=results,
        )
        with transaction(self.s.engine) as session:
            row = run_store.owned(session, run.id, self.owner)
            run_store.record_step(session, row, write)
        return run_store.written_step(write, self.s.clock.now())

    def _run_tools(self, run: Run, step: Step, tools: ToolRegistry, ctx: ToolContext) -> Step:
        """Execute the step's calls that have no result yet, persisting each one as it ends;
        returns the step with every result."""
        done: list[ToolCallRecord] = []
        for call in step.tool_calls:
            if call.result is not None:
                done.append(call)
                continue  # finished before a crash: never run twice
            call_ctx = replace(ctx, tool_call_id=call.call_id)
            try:
                result = self._wait(run, tools.get(call.name).call(call_ctx, call.arguments))
                is_error = False
            except ToolError as exc:
                result, is_error = exc.message, True
            with transaction(self.s.engine) as session:
                row = run_store.owned(session, run.id, self.owner)
                run_store.record_tool_result(
                    session, row, step.step, call.call_id, result, is_error
                )
            done.append(replace(call, result=result, is_error=is_error))
        return replace(step, tool_calls=tuple(done))

    def _conclude(self, run: Run, agent: Agent, chat: ChatSession, step: Step) -> None:
        """End the run as its last persisted step decided."""
        if step.decision == "final":
            text = (step.output.get("content") or "").strip()
            if agent.memory.save_episodes:
                self._remember(run, agent, chat, text)
            reason = "max_tokens" if step.output.get("finish_reason") == "length" else "answer"
            self._end(run, "succeeded", stop_reason=reason, output=text)
            self.s.after_run(run.id)
        elif step.decision == "max_steps":
            if agent.memory.save_episodes:
                self._remember(run, agent, chat, None)  # what the user said still counts
            message = f"the run used all {agent.max_steps} steps without a final answer"
            self._end(
                run,
                "incomplete",
                stop_reason="max_steps",
                error={"type": "max_steps", "message": message},
            )
        else:
            reason = step.output.get("failure") or "the model's output could not be used"
            self._fail(run, "invalid_model_output", str(reason))

    def _remember(self, run: Run, agent: Agent, chat: ChatSession, answer: str | None) -> None:
        """The exchange (or, without an answer, the user's message) as an episodic memory;
        writing it twice (after a crash) deduplicates."""
        if self.s.memory is None:
            return
        limit = self.s.settings.memory_max_content_chars
        exchange = f"User: {run.input}" + (f"\nAssistant: {answer}" if answer else "")
        content = exchange[:limit]
        try:
            self.s.memory.add(
                run.tenant_id,
                NewMemory(
                    agent_id=agent.id,
                    content=content,
                    user_id=chat.user_id,
                    session_id=chat.id,
                    kind="episodic",
                    source_run_id=run.id,
                    metadata={"source": "run"},
                ),
            )
        except AgentmillError as exc:
            log.warning("run %s: episode not stored: %s", run.id, exc)

    # -- ending ----------------------------------------------------------------------------

    def _fail(self, run: Run, kind: str, message: str) -> None:
        self._end(run, "failed", stop_reason="error", error={"type": kind, "message": message})

    def _end(
        self,
        run: Run,
        status: str,
        *,
        stop_reason: str,
        output: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        with transaction(self.s.engine) as session:
            row = run_store.owned(session, run.id, self.owner)
            run_store.finish(  # records a batch item's outcome too
                session, row, status, stop_reason=stop_reason, output=output, error=error
            )
            following = run_store.next_queued(session, run.session_id)
            batch_id = row.batch_id
        if following is not None:
            self.s.enqueue_run(following)
        if batch_id is not None:
            try:  # the run has ended either way; a failure here leaves it to the sweeper
                batches.advance(self.s.engine, batch_id, self.s.enqueue_run)
            except Exception:
                log.exception("run %s: batch %s not advanced; the sweeper will", run.id, batch_id)

    # -- waiting, with the lease kept and cancels heard ------------------------------------

    def _heartbeat(self, run_id: uuid.UUID) -> bool:
        with transaction(self.s.engine) as session:
            return run_store.heartbeat(session, run_id, self.owner, self.s.settings.run_lease_s)

    def _start_step(self, run: Run, step: int) -> None:
        """Renew the lease, hear a cancel, and append step.started: one transaction (one
        commit) per step rather than a heartbeat's and the event's."""
        with transaction(self.s.engine) as session:
            if run_store.heartbeat(session, run.id, self.owner, self.s.settings.run_lease_s):
                raise RunCancelled
            append_event(
                session,
                run.tenant_id,
                run.id,
                "step.started",
                {"step": step, "attempt": run.attempts},
            )

    def _event(self, run: Run, type_: str, data: dict[str, Any]) -> None:
        with transaction(self.s.engine) as session:
            run_store.owned(session, run.id, self.owner)
            append_event(session, run.tenant_id, run.id, type_, data)

    def _model_call(
        self, run: Run, request: ChatRequest, *, stream_step: int | None = None
    ) -> ChatResult:
        """Call the model; with `stream_step`, its text streams out as message.delta events."""
        if stream_step is None:
            return self._wait(run, self.s.model.complete(request), cancellable=True)
        deltas = _Deltas()

        def flush() -> None:
            text = deltas.take()
            if text:
                data = {"step": stream_step, "attempt": run.attempts, "delta": text}
                self._event(run, "message.delta", data)

        try:
            return self._wait(
                run, self.s.model.complete(request, deltas.add), cancellable=True, tick=flush
            )
        finally:
            flush()

    def _wait(
        self,
        run: Run,
        coro: Coroutine[Any, Any, T],
        *,
        cancellable: bool = False,
        tick: Callable[[], None] | None = None,
    ) -> T:
        future = self.s.portal.submit(coro)
        next_beat = time.monotonic() + self._beat_s
        cancel_seen = False
        while True:
            try:
                return future.result(timeout=DELTA_FLUSH_S if tick else self._beat_s)
            except concurrent.futures.TimeoutError:
                pass
            if tick is not None:
                tick()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self._beat_s
                cancel_seen = cancel_seen or self._heartbeat(run.id)
                if cancel_seen and cancellable:
                    future.cancel()
                    raise RunCancelled


_DECISION_NAMES: dict[type, str] = {
    FinalAnswer: "final",
    RunTools: "tools",
    ToolArgumentError: "tool_error",
    EmptyOutput: "empty",
    MaxStepsReached: "max_steps",
    Failed: "failed",
}
