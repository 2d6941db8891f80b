"""The step loop: execute one run, durably, resuming where an earlier attempt stopped.

For each step the loop builds the context, calls the model, lets `decide` (pure) choose, and
persists the model output before acting on it; each tool call is marked started before it runs
and its result persisted when it ends (agents/tools/runner.py). A worker that dies mid-run
leaves a lapsed lease; the next worker that claims the run reloads the steps, deals with the
tool calls without a result, and carries on.

Every read and write goes through the run's journal (agents/runs/journal.py), every model
call through agents/runs/model_calls.py; this module is the loop. Outages are waited out, not
failed (agents/runs/retry.py): a model server that is down or failing and a database
connection that drops are retried with backoff, and an outage that outlasts its budget stops
the attempt without failing the run, leaving it to its lease and the sweeper. A run fails only
for what will not heal: the model rejecting the request, unusable output, a misconfigured
agent, a bug. Its stored error is a fixed sentence per kind; the exception, which may name
hosts, ports and roles, is logged with the run id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from agents import telemetry
from agents.batches import lifecycle as batches
from agents.errors import INTERNAL_ERROR_MESSAGE, LeaseLost, RunCancelled, ToolError
from agents.mcp.sources import McpSources, SourceProblem
from agents.records import (
    Agent,
    CalledTool,
    ChatSession,
    Run,
    RunStatus,
    Step,
    StepDecision,
    StepOutput,
    Usage,
)
from agents.runs import approvals
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
from agents.runs.events import ToolSourceError
from agents.runs.journal import RunJournal
from agents.runs.model_calls import ModelCalls
from agents.runs.portal import Portal
from agents.runs.prompt import Messages
from agents.runs.retry import OutageOutlasted
from agents.runs.store import StepWrite
from agents.tools.context import Clock, SystemClock, ToolContext, ToolServices
from agents.tools.registry import ToolRegistry
from agents.tools.runner import run_tool_calls
from agents.worker.queue import send_committed
from core.config import Settings
from core.errors import AgentmillError
from core.log import bind as log_ids
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
    mcp: McpSources | None = None
    """The MCP servers' tools (None: agents' MCP servers are not offered)."""
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
            journal = RunJournal.claim(self.s, run_id, self.owner)
            if journal is None:
                return
            with (
                telemetry.run_attempt(journal.run),
                log_ids(tenant_id=str(journal.run.tenant_id), run_id=str(journal.run.id)),
            ):
                try:
                    self._settle(journal)
                except LeaseLost:
                    telemetry.lease_lost()
                    raise
        except LeaseLost:
            log.warning("run %s: lease lost; another worker carries on", run_id)
        except OutageOutlasted as exc:
            log.warning(
                "run %s: %s; the attempt stops and the run is left to its lease", run_id, exc
            )

    def _settle(self, journal: RunJournal) -> None:
        """Run the attempt, then end the run as it turned out (or leave it for a later one)."""
        run, settings = journal.run, self.s.settings
        crashed = run.attempts - 1 - run.outage_yields  # earlier attempts that vanished
        try:
            if crashed >= settings.run_max_attempts:
                message = (
                    f"the run was started {crashed} times and never finished; it is not tried again"
                )
                error = {"type": "worker_lost", "message": message}
                self._end(journal, "failed", stop_reason="worker_lost", error=error)
            else:  # a read whose connection dropped: resume from what is stored
                journal.retry(lambda: self._run(journal), "database")
        except RunCancelled:
            self._end(journal, "cancelled", stop_reason="cancelled")
        except (ModelRejected, UnknownModel) as exc:
            log.warning("run %s: the model call was rejected: %r", run.id, exc.__cause__ or exc)
            self._fail(journal, "model_error", _rejection(exc))
        except OutageOutlasted as exc:
            if exc.outage.kind == "database":
                raise  # nothing can be written: the lease lapses by itself
            log.warning("run %s: %s; handed back for a later attempt", run.id, exc)
            journal.hand_back(exc.outage)
        except LeaseLost:
            raise
        except Exception:
            log.exception("run %s failed with an internal error", run.id)
            self._fail(journal, "internal_error", INTERNAL_ERROR_MESSAGE)

    # -- the loop --------------------------------------------------------------------------

    def _run(self, journal: RunJournal) -> None:
        run = journal.run
        agent, chat, steps = journal.load()
        telemetry.name_agent(agent)
        try:
            tools = self._tools(journal, agent)
        except ToolError as exc:
            self._fail(journal, "configuration_error", exc.message)
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
            self._conclude(journal, agent, chat, steps[-1])  # died between deciding and ending
            return
        if steps and steps[-1].decision == "tools":
            acted = self._act(journal, agent, steps[-1], tools, ctx)
            if acted is None:
                return
            steps[-1] = acted
        calls = ModelCalls(journal, self.s.model)
        builder = ContextBuilder(self.s, journal, calls, agent, chat)
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
                parallel_tool_calls=agent.parallel_tool_calls if offered else None,
                temperature=agent.temperature,
                max_tokens=self.s.settings.agent_max_output_tokens,
            )
            if journal.start_step(state.step):
                raise RunCancelled
            with telemetry.step(state.step):
                started = time.monotonic()
                output = calls.complete(request, stream_step=state.step)
                model_ms = (time.monotonic() - started) * 1000
                decision = decide(state, output, tools)
                write = _step_write(state, messages, output, decision, model_ms)
                step = journal.record_step(write)
                if isinstance(decision, RunTools):
                    acted = self._act(journal, agent, step, tools, ctx)
                    if acted is None:
                        return
                    step = acted
            steps.append(step)
            if not isinstance(decision, RunTools | ToolArgumentError | EmptyOutput):
                self._conclude(journal, agent, chat, step)
                return
            state = advance(state, decision)

    def _tools(self, journal: RunJournal, agent: Agent) -> ToolRegistry:
        """The agent's tools: its named ones (ToolError if this worker lacks one), then the
        tools of its MCP servers that can be listed now (tool.source_error for the others)."""
        tools = self.s.tools.subset(agent.tools)
        mcp, uses = self.s.mcp, agent.mcp_servers
        if mcp is None or not uses:
            return tools
        found = journal.read(lambda session: mcp.endpoints(session, journal.run.tenant_id, uses))
        if isinstance(found, SourceProblem):
            problems, offered = [found], []
        else:
            toolset = mcp.tools(uses, found, lambda c: journal.lease.wait(c, cancellable=True))
            problems, offered = toolset.problems, toolset.tools
        for problem in problems:
            journal.event(ToolSourceError(problem.server, problem.message))
        for tool in offered:
            if tool.name in tools:
                log.warning("run %s: MCP tool %s clashes with a tool", journal.run.id, tool.name)
            else:
                tools.register(tool)
        return tools

    def _act(
        self, journal: RunJournal, agent: Agent, step: Step, tools: ToolRegistry, ctx: ToolContext
    ) -> Step | None:
        """Run the step's calls, or, while some wait for a human's decision, stop the attempt
        in `requires_action` (None)."""
        waiting = approvals.undecided(step, agent.approval)
        if waiting:
            schemas = {c.name: tools.get(c.name).parameters for c in waiting if c.name in tools}
            pending = approvals.pending_calls(waiting, schemas)
            journal.require_action(step.step, pending, agent.approval.timeout_s)
            telemetry.run_ended("requires_action", "approval")
            log.info("run %s: %d tool call(s) wait for approval", journal.run.id, len(pending))
            return None
        return run_tool_calls(journal, step, tools, ctx)

    def _conclude(self, journal: RunJournal, agent: Agent, chat: ChatSession, step: Step) -> None:
        """End the run as its last persisted step decided."""
        run = journal.run
        if step.decision == "final":
            text = (step.output.content or "").strip()
            if agent.memory.save_episodes:
                self._remember(run, agent, chat, text)
            reason = "max_tokens" if step.output.finish_reason == "length" else "answer"
            self._end(journal, "succeeded", stop_reason=reason, output=text)
            send_committed(self.s.after_run, [run.id], "fact extraction for run", swept=False)
        elif step.decision == "max_steps":
            if agent.memory.save_episodes:
                self._remember(run, agent, chat, None)  # what the user said still counts
            message = f"the run used all {agent.max_steps} steps without a final answer"
            self._end(
                journal,
                "incomplete",
                stop_reason="max_steps",
                error={"type": "max_steps", "message": message},
            )
        else:
            reason = step.output.failure or "the model's output could not be used"
            self._fail(journal, "invalid_model_output", reason)

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

    def _fail(self, journal: RunJournal, kind: str, message: str) -> None:
        error = {"type": kind, "message": message}
        self._end(journal, "failed", stop_reason="error", error=error)

    def _end(
        self,
        journal: RunJournal,
        status: RunStatus,
        *,
        stop_reason: str,
        output: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        following, batch_id = journal.finish(
            status, stop_reason=stop_reason, output=output, error=error
        )
        telemetry.run_ended(status, stop_reason)
        if following is not None:
            send_committed(self.s.enqueue_run, [following], "the session's next run")
        if batch_id is not None:
            try:  # the run has ended either way; a failure here leaves it to the sweeper
                batches.advance(self.s.engine, batch_id, self.s.enqueue_run)
            except Exception:
                log.exception(
                    "run %s: batch %s not advanced; the sweeper will", journal.run.id, batch_id
                )


def _step_write(
    state: RunState, context: Messages, output: ChatResult, decision: Decision, model_ms: float
) -> StepWrite:
    """What is persisted of a step: the model's output, typed, with what was decided."""
    results: dict[str, str] | None = None
    invalid = 0
    if isinstance(decision, ToolArgumentError):
        results = {e.call.id: e.message for e in decision.errors}
        invalid = decision.attempt
    elif isinstance(decision, EmptyOutput):
        invalid = decision.attempt
    recorded = StepOutput(
        content=output.content,
        tool_calls=tuple(CalledTool(c.id, c.name, c.arguments) for c in output.tool_calls),
        finish_reason=output.finish_reason,
        model=output.model,
        failure=decision.reason if isinstance(decision, Failed) else None,
        retry_message=decision.message if isinstance(decision, EmptyOutput) else None,
    )
    return StepWrite(
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
        results=results,
    )


def _rejection(exc: ModelRejected | UnknownModel) -> str:
    if isinstance(exc, UnknownModel):
        return f"the agent's model {exc.ident[:128]!r} is not served by this installation"
    return exc.message


_DECISION_NAMES: dict[type, StepDecision] = {
    FinalAnswer: "final",
    RunTools: "tools",
    ToolArgumentError: "tool_error",
    EmptyOutput: "empty",
    MaxStepsReached: "max_steps",
    Failed: "failed",
}
