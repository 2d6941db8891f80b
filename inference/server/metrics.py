"""Prometheus metrics of the inference server (one registry per server instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.web.errors import status_of
from inference.engines.base import Engine

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """Requests, tokens, queue depth, time to first token, decode speed, prefix reuse."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self._engine = engine
        r = self.registry
        self.requests = Counter(
            "agentmill_inference_requests",
            "Requests by endpoint and HTTP status code.",
            ["endpoint", "status"],
            registry=r,
        )
        self.errors = Counter(
            "agentmill_inference_request_errors",
            "Requests that failed with an exception, by endpoint and its type.",
            ["endpoint", "error"],
            registry=r,
        )
        self.prompt_tokens = Counter(
            "agentmill_inference_prompt_tokens", "Prompt tokens received.", registry=r
        )
        self.completion_tokens = Counter(
            "agentmill_inference_completion_tokens", "Tokens generated.", registry=r
        )
        self.ttft = Histogram(
            "agentmill_inference_time_to_first_token_seconds",
            "Time to first token.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_rate = Histogram(
            "agentmill_inference_decode_tokens_per_second",
            "Per-request decode speed after the first token.",
            buckets=(1, 5, 10, 25, 50, 100, 200, 400, 800),
            registry=r,
        )
        self.queue_depth = Gauge(
            "agentmill_inference_queue_depth", "Requests waiting for a slot.", registry=r
        )
        self.running = Gauge("agentmill_inference_running", "Requests being decoded.", registry=r)
        self.prompt_sent = Gauge(
            "agentmill_inference_prompt_tokens_sent",
            "Prompt tokens the engine was asked to process (total).",
            registry=r,
        )
        self.prompt_evaluated = Gauge(
            "agentmill_inference_prompt_tokens_evaluated",
            "Prompt tokens the engine actually evaluated (the rest came from the prefix cache).",
            registry=r,
        )

    def count(self, endpoint: str, status: int) -> None:
        """One answered request (`status`: its HTTP status code)."""
        self.requests.labels(endpoint, str(status)).inc()

    def count_error(self, endpoint: str, exc: BaseException) -> None:
        """One request that failed with `exc`: its status, and the exception's type."""
        self.count(endpoint, status_of(exc))
        self.errors.labels(endpoint, type(exc).__name__).inc()

    def observe_completion(
        self, prompt_tokens: int, completion_tokens: int, ttft_s: float, total_s: float
    ) -> None:
        """Record one finished generation."""
        self.prompt_tokens.inc(prompt_tokens)
        self.completion_tokens.inc(completion_tokens)
        if completion_tokens > 0:
            self.ttft.observe(ttft_s)
        decode_s = total_s - ttft_s
        if completion_tokens > 1 and decode_s > 0:
            self.decode_rate.observe((completion_tokens - 1) / decode_s)

    def render(self) -> bytes:
        """The exposition text, with engine gauges refreshed."""
        stats = self._engine.stats()
        self.queue_depth.set(stats.waiting)
        self.running.set(stats.running)
        self.prompt_sent.set(stats.prompt_tokens_sent)
        self.prompt_evaluated.set(stats.prompt_tokens_evaluated)
        return generate_latest(self.registry)
