"""What a run tells the operator: its spans (OpenTelemetry, with the GenAI semantic
conventions: `invoke_agent`, `chat`, `execute_tool`) and its metrics (agents/metrics.py), from
one place, so the two never disagree.

The run's span is the child of the Celery task's span, itself the child of the REST request
that queued the run (core/tracing.py propagates the context through the task's headers); a
step, its model call, its tool calls and memory searches nest under it (the portal's loop
runs each coroutine in its caller's context: agents/runs/portal.py). With tracing off the
spans are no-ops; the metrics are always kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from agents import metrics
from agents.records import Agent, Run
from inference.client.model_client import ChatRequest, ChatResult

tracer = trace.get_tracer("agentmill.agents")


@contextmanager
def run_attempt(run: Run) -> Iterator[Span]:
    """The span of one attempt at a run (claimed by this worker)."""
    with tracer.start_as_current_span(
        "invoke_agent",
        kind=trace.SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": str(run.agent_id),
            "gen_ai.conversation.id": str(run.session_id),
            "agentmill.run.id": str(run.id),
            "agentmill.tenant.id": str(run.tenant_id),
            "agentmill.run.attempt": run.attempts,
        },
    ) as span:
        if run.attempts == 1 and run.created_at is not None:
            waited = (datetime.now(UTC) - run.created_at).total_seconds()
            metrics.QUEUE_WAIT_SECONDS.observe(max(0.0, waited))
        yield span


def name_agent(agent: Agent) -> None:
    """Name the current run span after its agent, once the agent is loaded."""
    span = trace.get_current_span()
    span.update_name(f"invoke_agent {agent.name}")
    span.set_attribute("gen_ai.agent.name", agent.name)
    span.set_attribute("gen_ai.request.model", agent.model)


def run_ended(status: str, stop_reason: str) -> None:
    """Record how the run ended (on its span, and in the runs counter)."""
    span = trace.get_current_span()
    span.set_attribute("agentmill.run.status", status)
    span.set_attribute("agentmill.run.stop_reason", stop_reason)
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, stop_reason))
    metrics.RUNS_FINISHED.labels(outcome=status).inc()


def lease_lost() -> None:
    """Another worker took the run over."""
    trace.get_current_span().add_event("lease lost")
    metrics.LEASES_LOST.inc()


@contextmanager
def step(number: int) -> Iterator[Span]:
    """One step: a model call and what it decided (tool calls included)."""
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"step {number}", attributes={"agentmill.step": number}
    ) as span:
        try:
            yield span
        finally:
            metrics.STEP_SECONDS.observe(time.perf_counter() - started)


@contextmanager
def model_call(request: ChatRequest) -> Iterator[ModelCallRecord]:
    """A chat completion; the caller reports the result with `record.done(result)`."""
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"chat {request.model}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": request.model,
            "gen_ai.request.temperature": request.temperature or 0.0,
            "gen_ai.request.max_tokens": request.max_tokens or 0,
        },
    ) as span:
        record = ModelCallRecord(span, request.model, started)
        yield record
        metrics.MODEL_CALL_SECONDS.labels(model=request.model).observe(
            time.perf_counter() - started
        )


class ModelCallRecord:
    """What one model call reports about itself."""

    def __init__(self, span: Span, model: str, started: float) -> None:
        self.span, self.model, self.started = span, model, started
        self._first: float | None = None

    def first_token(self) -> None:
        """The first streamed piece arrived (time to first token)."""
        if self._first is None:
            self._first = time.perf_counter()
            self.span.set_attribute("agentmill.time_to_first_token_s", self._first - self.started)

    def done(self, result: ChatResult) -> None:
        """Tokens, cost and finish reason of the answer."""
        usage = result.usage
        self.span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        self.span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        self.span.set_attribute("agentmill.cost_usd", usage.cost_usd)
        self.span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
        if result.model:
            self.span.set_attribute("gen_ai.response.model", result.model)
        metrics.TOKENS.labels(model=self.model, kind="prompt").inc(usage.prompt_tokens)
        metrics.TOKENS.labels(model=self.model, kind="completion").inc(usage.completion_tokens)


@contextmanager
def tool_call(name: str, call_id: str, step_number: int) -> Iterator[ToolCallRecord]:
    """One tool call (on the portal's loop, which runs it in the caller's context)."""
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"execute_tool {name}",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "agentmill.step": step_number,
        },
    ) as span:
        record = ToolCallRecord(span)
        try:
            yield record
        finally:
            outcome = "error" if record.failed else "ok"
            metrics.TOOL_SECONDS.labels(tool=name, outcome=outcome).observe(
                time.perf_counter() - started
            )


class ToolCallRecord:
    """How one tool call went."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.failed = False

    def error(self, message: str) -> None:
        """The tool answered with an error (its message goes back to the model)."""
        self.failed = True
        self.span.set_status(Status(StatusCode.ERROR, message[:200]))


@contextmanager
def memory_search(k: int, where: str) -> Iterator[Span]:
    """A memory search (`where`: recall for the prompt, or the memory_search tool)."""
    started = time.perf_counter()
    with tracer.start_as_current_span(
        "memory.search", attributes={"agentmill.memory.k": k, "agentmill.memory.by": where}
    ) as span:
        try:
            yield span
        finally:
            elapsed = time.perf_counter() - started
            span.set_attribute("agentmill.memory.latency_ms", round(elapsed * 1000, 2))
            metrics.MEMORY_SEARCH_SECONDS.observe(elapsed)


def event(kind: str) -> None:
    """A run event was appended: noted on the current span."""
    trace.get_current_span().add_event(kind)
