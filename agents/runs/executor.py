"""The step loop: execute one run, durably, resuming where an earlier attempt stopped.

For each step the loop builds the context, calls the model, lets `decide` (pure) choose, and
persists the model output before acting on it; each tool call is marked started before it runs
and its result persisted when it ends (agents/tools/runner.py). A worker that dies mid-run
leaves a lapsed lease; the next worker that claims the run reloads the steps, deals with the
tool calls without a result, and carries on.

Outages are waited out, not failed (agents/runs/attempt.py, agents/runs/retry.py): a model
server that is down or failing and a database connection that drops are retried with backoff,
and an outage that outlasts its budget stops the attempt without failing the run, leaving it to
its lease and the sweeper. A run fails only for what will not heal: the model rejecting the
request, unusable output, a misconfigured agent, a bug. Its stored error is a fixed sentence per
kind; the exception, which may name hosts, ports and roles, is logged with the run id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agents import agent_store
from agents.batches import lifecycle as batches
from agents.errors import INTERNAL_ERROR_MESSAGE, LeaseLost, RunCancelled, ToolError
from agents.records import Agent, ChatSession, Run, Step, Usage
from agents.runs import fair_claim
from agents.runs import store as run_store
from agents.runs.attempt import Attempt
from agents.runs.context_builder import ContextBuilder
from agents.runs.decide import (
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
from agents.runs.events import append_event
from agents.runs.portal import Portal
from agents.runs.prompt import Messages
from agents.runs.retry import Backoff, OutageKind, OutageOutlasted, retry_outages
from agents.runs.store import StepWrite
from agents.tables import RunRow
from agents.tools.context import Clock, SystemClock, ToolContext, ToolServices
from agents.tools.registry import ToolRegistry
from agents.tools.runner import run_tool_calls
from agents.worker.queue import send_committed
from core.config import Settings
from core.db import transaction
from core.errors import AgentmillError
from inference.client.model_client import ChatRequest, ChatResult, ModelClient, ModelRejected
from inference.errors import UnknownModel
from memory.records import NewMemory
from memory.store import MemoryStore

log = logging.getLogger(__name__)


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


class RunExecutor:
    """Executes runs for one worker process (`owner` names it in leases)."""

    def __init__(self, services: Services, owner: str) -> None:
        self.s = services
        self.owner = owner

    # -- entry -----------------------------------------------------------------------------

    def execute(self, run_id: uuid.UUID) -> None:
        """Claim the run and take it as far as it goes; a no-op when it is finished or held."""
        try:
            run = self._claim(run_id)
            if run is None:
                return
            self._settle(Attempt(self.s, run, self.owner))
        except LeaseLost:
            log.warning("run %s: lease lost; another worker carries on", run_id)
        except OutageOutlasted as exc:
            log.warning(
                "run %s: %s; the attempt stops and the run is left to its lease", run_id, exc
            )

    def _claim(self, run_id: uuid.UUID) -> Run | None:
        """The message is a ticket for one slot turn: with fair shares on, it takes the
        fairest claimable run of any tenant (agents/runs/fair_claim.py), else exactly `run_id`."""
        settings = self.s.settings
        take = fair_claim.claim if settings.worker_fair_share else run_store.claim

        def claim() -> Run | None:
            with transaction(self.s.engine) as session:
                run = take(session, run_id, self.owner, settings.run_lease_s)
                if run is not None:
                    data = {"attempt": run.attempts}
                    append_event(session, run.tenant_id, run.id, "run.started", data)
                return run

        budget: dict[OutageKind, Backoff] = {"database": Backoff(settings.db_retry_s)}
        run = retry_outages(claim, budget, lambda seconds, _outage, _n: time.sleep(seconds))
        if run is not None and run.id != run_id:
            log.info(
                "ticket for run %s ran run %s (tenant %s): fair share",
                run_id,
                run.id,
                run.tenant_id,
            )
        return run

    def _settle(self, attempt: Attempt) -> None:
        """Run the attempt, then end the run as it turned out (or leave it for a later one)."""
        run, settings = attempt.run, self.s.settings
        crashed = run.attempts - 1 - run.outage_yields  # earlier attempts that vanished
        try:
            if crashed >= settings.run_max_attempts:
                message = (
                    f"the run was started {crashed} times and never finished; it is not tried again"
                )
                error = {"type": "worker_lost", "message": message}
                self._end(attempt, "failed", stop_reason="worker_lost", error=error)
            else:  # a read whose connection dropped: resume from what is stored
                attempt.retry(lambda: self._run(attempt), "database")
        except RunCancelled:
            self._end(attempt, "cancelled", stop_reason="cancelled")
        except (ModelRejected, UnknownModel) as exc:
            log.warning("run %s: the model call was rejected: %r", run.id, exc.__cause__ or exc)
            self._fail(attempt, "model_error", _rejection(exc))
        except OutageOutlasted as exc:
            if exc.outage.kind == "database":
                raise  # nothing can be written: the lease lapses by itself
            log.warning("run %s: %s; handed back for a later attempt", run.id, exc)
            outage = exc.outage
            attempt.write(
                lambda session, row: run_store.hand_back(
                    session, row, outage.reason, outage.message
                )
            )
        except LeaseLost:
            raise
        except Exception:
            log.exception("run %s failed with an internal error", run.id)
            self._fail(attempt, "internal_error", INTERNAL_ERROR_MESSAGE)

    # -- the loop --------------------------------------------------------------------------

    def _run(self, attempt: Attempt) -> None:
        run = attempt.run

        def load(session: Session) -> tuple[Agent, ChatSession, list[Step]]:
            agent = agent_store.get_agent(session, run.tenant_id, run.agent_id)
            chat = agent_store.get_session(session, run.tenant_id, run.session_id)
            return agent, chat, run_store.load_steps(session, run.id)

        agent, chat, steps = attempt.read(load)
        try:
            tools = self.s.tools.subset(agent.tools)
        except ToolError as exc:
            self._fail(attempt, "configuration_error", exc.message)
            return
        ctx = ToolContext(
            tenant_id=run.tenant_id,
            agent_id=agent.id,
            user_id=chat.user_id,
            session_id=chat.id,
            run_id=run.id,
            shared_blocks_writable=agent.memory.shared_blocks_writable,
            services=ToolServices(clock=self.s.clock, memory=self.s.memory),
        )
        if steps and steps[-1].decision in ("final", "max_steps", "failed"):
            self._conclude(attempt, agent, chat, steps[-1])  # died between deciding and ending
            return
        if steps and steps[-1].decision == "tools":
            steps[-1] = run_tool_calls(attempt, steps[-1], tools, ctx)
        builder = ContextBuilder(self.s, attempt, agent, chat)
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
            if attempt.start_step(state.step):
                raise RunCancelled
            started = time.monotonic()
            output = attempt.model(request, stream_step=state.step)
            model_ms = (time.monotonic() - started) * 1000
            decision = decide(state, output, tools)
            step = self._record(attempt, state, messages, output, decision, model_ms)
            if isinstance(decision, RunTools):
                step = run_tool_calls(attempt, step, tools, ctx)
            steps.append(step)
            if not isinstance(decision, RunTools | ToolArgumentError | EmptyOutput):
                self._conclude(attempt, agent, chat, step)
                return
            state = advance(state, decision)

    def _record(
        self,
        attempt: Attempt,
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
                prompt_tokens=output.usage.prompt_tokens,
                completion_tokens=output.usage.completion_tokens,
                cost_usd=output.usage.cost_usd,
            ),
            model_ms=model_ms,
            calls=calls if isinstance(decision, RunTools | ToolArgumentError) else (),
            results=results,
        )
        attempt.write(lambda session, row: run_store.record_step(session, row, write))
        return run_store.written_step(write, self.s.clock.now())

    def _conclude(self, attempt: Attempt, agent: Agent, chat: ChatSession, step: Step) -> None:
        """End the run as its last persisted step decided."""
        run = attempt.run
        if step.decision == "final":
            text = (step.output.get("content") or "").strip()
            if agent.memory.save_episodes:
                self._remember(run, agent, chat, text)
            reason = "max_tokens" if step.output.get("finish_reason") == "length" else "answer"
            self._end(attempt, "succeeded", stop_reason=reason, output=text)
            send_committed(self.s.after_run, [run.id], "fact extraction for run", swept=False)
        elif step.decision == "max_steps":
            if agent.memory.save_episodes:
                self._remember(run, agent, chat, None)  # what the user said still counts
            message = f"the run used all {agent.max_steps} steps without a final answer"
            self._end(
                attempt,
                "incomplete",
                stop_reason="max_steps",
                error={"type": "max_steps", "message": message},
            )
        else:
            reason = step.output.get("failure") or "the model's output could not be used"
            self._fail(attempt, "invalid_model_output", str(reason))

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

    def _fail(self, attempt: Attempt, kind: str, message: str) -> None:
        error = {"type": kind, "message": message}
        self._end(attempt, "failed", stop_reason="error", error=error)

    def _end(
        self,
        attempt: Attempt,
        status: str,
        *,
        stop_reason: str,
        output: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        def finish(session: Session, row: RunRow) -> tuple[uuid.UUID | None, uuid.UUID | None]:
            run_store.finish(  # records a batch item's outcome too
                session, row, status, stop_reason=stop_reason, output=output, error=error
            )
            return run_store.next_queued(session, row.session_id), row.batch_id

        # A retry whose first commit went through meets LeaseLost (the run has ended): then the
        # sends below are skipped and the sweeper makes them.
        following, batch_id = attempt.write(finish)
        if following is not None:
            send_committed(self.s.enqueue_run, [following], "the session's next run")
        if batch_id is not None:
            try:  # the run has ended either way; a failure here leaves it to the sweeper
                batches.advance(self.s.engine, batch_id, self.s.enqueue_run)
            except Exception:
                log.exception(
                    "run %s: batch %s not advanced; the sweeper will", attempt.run.id, batch_id
                )


def _rejection(exc: ModelRejected | UnknownModel) -> str:
    if isinstance(exc, UnknownModel):
        return f"the agent's model {exc.ident[:128]!r} is not served by this installation"
    return exc.message


_DECISION_NAMES: dict[type, str] = {
    FinalAnswer: "final",
    RunTools: "tools",
    ToolArgumentError: "tool_error",
    EmptyOutput: "empty",
    MaxStepsReached: "max_steps",
    Failed: "failed",
}
