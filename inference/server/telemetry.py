"""The inference server's own span: one per finished generation, `generate <model>`, under the
HTTP request's span (which the FastAPI instrumentation continues from the caller's trace
context, so a worker's model call shows what the server did inside it). It carries the GenAI
attributes: tokens in and out, prompt tokens reused from the cache, the finish reason, the
output constraint, and time to first token (also an event at that moment). With tracing off
the span is a no-op."""

from __future__ import annotations

import time

from opentelemetry import trace

from inference.engines.base import Finished

_tracer = trace.get_tracer("agentmill.inference")


def record_generation(
    model: str, started_monotonic: float, done: Finished, constraint: str | None, streamed: bool
) -> None:
    """Record the generation that began at `started_monotonic` and has just finished."""
    now_ns = time.time_ns()
    start_ns = now_ns - int((time.monotonic() - started_monotonic) * 1e9)
    span = _tracer.start_span(
        f"generate {model}",
        start_time=start_ns,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "agentmill",
            "gen_ai.request.model": model,
            "gen_ai.response.finish_reasons": (done.reason,),
            "gen_ai.usage.input_tokens": done.prompt_tokens,
            "gen_ai.usage.output_tokens": done.completion_tokens,
            "agentmill.inference.cached_prompt_tokens": done.cached_prompt_tokens,
            "agentmill.inference.time_to_first_token_s": done.time_to_first_token_s,
            "agentmill.inference.constraint": constraint or "none",
            "agentmill.inference.streamed": streamed,
        },
    )
    if done.completion_tokens > 0:
        span.add_event("first_token", timestamp=start_ns + int(done.time_to_first_token_s * 1e9))
    span.end(end_time=now_ns)
