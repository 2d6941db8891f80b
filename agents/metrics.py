"""The workers' Prometheus metrics, defined once per process (core/metrics.py says how a host's
processes share them and where they are served).

`RUNS_FINISHED{outcome}` counts runs that stopped, by outcome: succeeded, failed, cancelled,
incomplete, requires_action. `STEP_SECONDS` times one model step of the loop, `TOOL_SECONDS`
one tool call (`outcome` ok or error), `MODEL_CALL_SECONDS` one call of the inference client
and `TOKENS{model, kind}` what it spent (kind prompt or completion). `QUEUE_WAIT_SECONDS` is
the time from a run's enqueueing to a worker claiming it; `LEASES_LOST` counts runs a worker
stopped executing because another took them over; `SWEEPER_REQUEUES{reason}` counts what the
sweeper sent to the queue (lost: a run no worker was executing; expired_approval: a run whose
wait for approval expired; batch: a stalled batch's next run). `MEMORY_SEARCH_SECONDS` times
one long-term memory search.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

RUNS_FINISHED = Counter("agentmill_runs_finished", "Runs that stopped, by outcome.", ["outcome"])
STEP_SECONDS = Histogram(
    "agentmill_run_step_seconds", "One model step of a run.", buckets=_STEP_BUCKETS
)
TOOL_SECONDS = Histogram(
    "agentmill_tool_call_seconds",
    "One tool call, by tool and outcome (ok, error).",
    ["tool", "outcome"],
    buckets=(*_FAST_BUCKETS, 10.0, 30.0, 60.0),
)
QUEUE_WAIT_SECONDS = Histogram(
    "agentmill_run_queue_wait_seconds",
    "From a run's enqueueing to a worker claiming it.",
    buckets=_WAIT_BUCKETS,
)
LEASES_LOST = Counter(
    "agentmill_run_leases_lost", "Runs a worker stopped executing: another worker took them."
)
SWEEPER_REQUEUES = Counter(
    "agentmill_sweeper_requeued",
    "Runs the sweeper sent to the queue, by reason (lost, expired_approval, batch).",
    ["reason"],
)
MEMORY_SEARCH_SECONDS = Histogram(
    "agentmill_memory_search_seconds", "One long-term memory search.", buckets=_FAST_BUCKETS
)
MODEL_CALL_SECONDS = Histogram(
    "agentmill_model_call_seconds",
    "One call of the inference client, by model.",
    ["model"],
    buckets=_STEP_BUCKETS,
)
TOKENS = Counter(
    "agentmill_model_tokens",
    "Tokens of model calls, by model and kind (prompt, completion).",
    ["model", "kind"],
)
