"""Agent runtime: per-step overhead with the model time excluded, and enqueue-to-start latency.

Everything is real: an embedded Postgres in a temporary home (migrated), the inference server
with the bundled model (`python -m cli.main inference`), and `agentmill worker` child processes
(Celery, thread pool) on Redis and on the embedded Postgres broker. The benchmark process plays
the API: it writes a user message and its queued run (`run_store.create_run`), commits, and
sends the run to the queue, one run at a time, waiting for each to finish (LISTEN on the event
channel) and pausing 0.2-0.4 s (random) so that the next one finds the worker idle. Each run
gets a new session of the same end user.

Figures, all from timestamps Postgres stamps (`now()`, the start of the writing transaction,
so one clock):
  overhead  = (finished_at - started_at) - sum(run_steps.model_ms): everything the worker does
              for a run besides waiting on the model (claiming, loading, building the context,
              recalling and writing memories, token counting, persisting steps, events, tools).
              `model_ms` is measured by the executor around the model call (litellm client,
              HTTP, streaming and its delta events included). finished_at is the start of
              the run's last transaction, so that transaction's own work is not in it.
  enqueue-to-start = started_at - created_at: the producer's transaction, the broker hop, the
              worker picking the task up, up to its claim statement. The producer's share
              (create_run's transaction with its commit, then send_task) is timed in this
              process and shown beside it.
Scenarios on Redis: an agent with no tools (tool_choice "none", max_steps 1) with memory off
(recall_k 0, no episodes, no facts) and with the default memory policy (recall 5, episodes on;
fact extraction off: it is a separate background task); and a calculator agent
(tool_choice "required", max_steps 3, memory off) for the cost per step when tools run. Then
the no-tool, memory-off agent on the embedded Postgres broker (kombu's SQLAlchemy transport,
polling every 0.2 s) for its enqueue-to-start latency. The worker's model calls generate at
most --max-output-tokens tokens (model time is excluded; this only bounds the wall time).

    .venv/bin/python bench/agent_runtime.py [--runs 100] [--skip-postgres-broker] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import Engine, select

from agents import agent_store
from agents.records import FINAL_STATUSES, MemoryPolicy, NewAgent
from agents.runs import store as run_store
from agents.runs.events import NOTIFY_CHANNEL
from agents.tables import EventRow, RunRow, StepRow
from agents.worker.queue import RunQueue, make_celery
from core import migrate
from core.config import Settings
from core.db import create_db_engine, transaction
from core.embedded_pg import EmbeddedPostgres
from core.tenants import ensure_tenant
from core.web.threaded import free_port

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379"
TARGET_OVERHEAD_MS = 15.0
TARGET_E2S_MS = 20.0
USER = "bench-user"
PROMPTS = (
    "Say hello to me in five words.",
    "My favourite number is {i}. Acknowledge it briefly.",
    "Give me one word that rhymes with cat (request {i}).",
    "I am planning trip number {i} to Lisbon. Reply in one short sentence.",
)
TOOL_PROMPT = "Use the calculator to compute {a}*{b}, then tell me the result."


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values) if values else float("nan"),
        "p99": _pct(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
        "min": min(values, default=float("nan")),
        "max": max(values, default=float("nan")),
    }


# -- child processes ------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """The environment without agentmill's own settings (each child gets exactly ours)."""
    drop = ("AGENTMILL_", "DATABASE_URL", "REDIS_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def inference_server(home: Path) -> Iterator[str]:
    """`agentmill inference` with the bundled model; yields its base URL (…/v1)."""
    port = free_port()
    log_path = home / "inference.log"
    env = {**_clean_env(), "AGENTMILL_HOME": str(home / "inference-home")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "inference", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"inference server exited:\n{log_path.read_text()[-3000:]}")
            try:
                url = f"http://127.0.0.1:{port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("inference server not ready after 180 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(process)


class Worker:
    """An `agentmill worker` child with these settings (started at once; `ready` waits)."""

    process: subprocess.Popen[bytes]

    def __init__(self, home: Path, name: str, env: dict[str, str], concurrency: int) -> None:
        self.log = home / f"worker-{name}.log"
        full = {**_clean_env(), "PYTHONPATH": str(REPO), "AGENTMILL_HOME": str(home), **env}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker", "--concurrency", str(concurrency)],
                cwd=REPO,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ready(self, timeout_s: float = 240) -> None:
        """Wait for Celery's "ready." line."""
        deadline = time.monotonic() + timeout_s
        while " ready." not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers."""
        _stop(self.process)


def _spare_redis_db(base: str) -> str:
    """An empty Redis database (highest number first), flushed."""
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{number}", socket_connect_timeout=2)
        try:
            if client.dbsize() == 0:
                client.flushdb()
                return f"{base}/{number}"
        finally:
            client.close()
    raise RuntimeError(f"no empty database on {base}")


# -- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One finished run's timings (ms)."""

    status: str
    steps: int
    overhead: float
    model: float
    enqueue_to_start: float
    produce: float
    """The producer's part of enqueue_to_start (create_run transaction, commit, send)."""
    setup: float
    """started_at -> the first step.started event (context, recall, ...)."""
    around_model: float
    """first step.started -> its step row, minus the model time (single-step runs)."""
    conclude: float
    """last step row -> finished_at (persisting the step, episode, ending the run)."""


class Bench:
    """A tenant and the means to send runs one at a time and wait for them."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.listener = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        )
        self.listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with transaction(engine) as session:
            self.tenant_id, _ = ensure_tenant(session, "bench")

    def close(self) -> None:
        """Close the listening connection."""
        self.listener.close()

    def agent(self, name: str, **spec: Any) -> uuid.UUID:
        """Create an agent of the bench tenant."""
        values: dict[str, Any] = {
            "name": name,
            "instructions": "You are a concise assistant. Answer in one short sentence.",
            "model": "local",
            "tools": (),
            "max_steps": 1,
            "tool_choice": "none",
            "temperature": 0.0,
            **spec,
        }
        with transaction(self.engine) as session:
            return agent_store.create_agent(session, self.tenant_id, NewAgent(**values)).id

    def _wait(self, run_id: uuid.UUID, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        query = "SELECT status FROM runs WHERE id = %s"
        while True:
            row = self.listener.execute(query, (run_id,)).fetchone()
            if row is not None and row[0] in FINAL_STATUSES:
                return str(row[0])
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"run {run_id} not finished after {timeout_s:.0f} s")
            for _ in self.listener.notifies(timeout=min(left, 1.0), stop_after=1):
                pass

    def send(self, queue: RunQueue, agent_id: uuid.UUID, text: str) -> tuple[uuid.UUID, float]:
        """A new session, a message, its run enqueued after commit; waits until it ends.
        Returns the run and the producer's time (ms): create_run's transaction, its commit,
        and sending the task."""
        with transaction(self.engine) as session:
            chat = agent_store.create_session(
                session, self.tenant_id, agent_id, user_id=USER, metadata={}
            )
        t0 = time.perf_counter()
        with transaction(self.engine) as session:
            run = run_store.create_run(session, self.tenant_id, chat.id, text).run
        queue.enqueue_run(run.id)
        produce_ms = (time.perf_counter() - t0) * 1000
        self._wait(run.id, 120)
        return run.id, produce_ms

    def measure(self, run_id: uuid.UUID, produce_ms: float) -> Measured:
        """The run's timings from its rows."""
        with transaction(self.engine) as session:
            run = session.get_one(RunRow, run_id)
            steps = session.scalars(
                select(StepRow).where(StepRow.run_id == run_id).order_by(StepRow.step)
            ).all()
            started_events = session.scalars(
                select(EventRow.created_at)
                .where(EventRow.run_id == run_id, EventRow.type == "step.started")
                .order_by(EventRow.seq)
            ).all()
        assert run.started_at is not None
        assert run.finished_at is not None
        model = sum(s.model_ms for s in steps)
        wall = _ms(run.finished_at, run.started_at)
        first_started = started_events[0] if started_events else run.finished_at
        setup = _ms(first_started, run.started_at)
        around = float("nan")
        if steps and started_events:
            around = _ms(steps[0].created_at, started_events[0]) - steps[0].model_ms
        conclude = _ms(run.finished_at, steps[-1].created_at) if steps else float("nan")
        return Measured(
            status=run.status,
            steps=run.steps,
            overhead=wall - model,
            model=model,
            enqueue_to_start=_ms(run.started_at, run.created_at),
            produce=produce_ms,
            setup=setup,
            around_model=around,
            conclude=conclude,
        )


def scenario(
    bench: Bench,
    queue: RunQueue,
    agent_id: uuid.UUID,
    prompts: list[str],
    warmup: int,
    pause_s: float,
    rng: random.Random,
) -> dict[str, Any]:
    """Send the prompts one at a time (the first `warmup` are not counted)."""
    measured: list[Measured] = []
    for i, text in enumerate(prompts):
        run_id, produce_ms = bench.send(queue, agent_id, text)
        if i >= warmup:
            measured.append(bench.measure(run_id, produce_ms))
        time.sleep(pause_s + rng.uniform(0, 0.2))
    overhead = [m.overhead for m in measured]
    per_step = [m.overhead / max(m.steps, 1) for m in measured]
    return {
        "runs": len(measured),
        "statuses": dict(Counter(m.status for m in measured)),
        "steps": dict(Counter(m.steps for m in measured)),
        "overhead_ms": _summary(overhead),
        "overhead_per_step_ms": _summary(per_step),
        "model_ms": _summary([m.model for m in measured]),
        "enqueue_to_start_ms": _summary([m.enqueue_to_start for m in measured]),
        "producer_ms": _summary([m.produce for m in measured]),
        "phases_ms_p50": {
            "setup": statistics.median(m.setup for m in measured),
            "around_model": statistics.median(m.around_model for m in measured),
            "conclude": statistics.median(m.conclude for m in measured),
        },
    }


def _prompts(n: int) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)].format(i=i) for i in range(n)]


def _tool_prompts(n: int, rng: random.Random) -> list[str]:
    return [TOOL_PROMPT.format(a=rng.randint(11, 99), b=rng.randint(11, 99)) for _ in range(n)]


def main() -> None:
    """Start everything, measure, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs, no tools, memory off")
    parser.add_argument("--memory-runs", type=int, default=30, help="runs, no tools, memory on")
    parser.add_argument("--tool-runs", type=int, default=12, help="runs of the calculator agent")
    parser.add_argument("--pg-runs", type=int, default=40, help="runs on the Postgres broker")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted runs per scenario")
    parser.add_argument("--max-output-tokens", type=int, default=32)
    parser.add_argument("--pause", type=float, default=0.2, help="idle seconds between runs")
    parser.add_argument("--concurrency", type=int, default=2, help="worker threads")
    parser.add_argument("--redis-url", default=REDIS_URL, help="Redis server (a spare db is used)")
    parser.add_argument("--skip-postgres-broker", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/agent_runtime.json")
    args = parser.parse_args()
    if min(args.runs, args.memory_runs) < 2:
        parser.error("--runs and --memory-runs need at least 2 runs each")
    rng = random.Random(0)
    load_before = os.getloadavg()
    t_start = time.monotonic()

    home = Path(tempfile.mkdtemp(prefix="agentmill-runtime-"))
    pg = EmbeddedPostgres(home / "db")
    url = pg.start()
    engine = create_db_engine(url)
    redis_db = _spare_redis_db(args.redis_url)
    results: dict[str, Any] = {}
    try:
        migrate.upgrade(engine)
        bench = Bench(engine, url)
        quiet = MemoryPolicy(recall_k=0, save_episodes=False, extract_facts=False)
        agents = {
            "memory_off": bench.agent("no-tools-memory-off", memory=quiet),
            "memory_on": bench.agent(
                "no-tools-memory-on", memory=MemoryPolicy(extract_facts=False)
            ),
            "tools": bench.agent(
                "calculator",
                instructions="You are a helpful assistant. Use the calculator for arithmetic.",
                tools=["calculator"],
                tool_choice="required",
                max_steps=3,
                memory=quiet,
            ),
        }
        with inference_server(home) as inference_url:
            common = {
                "AGENTMILL_DATABASE_URL": url,
                "AGENTMILL_INFERENCE_URL": inference_url,
                "AGENTMILL_AGENT_MAX_OUTPUT_TOKENS": str(args.max_output_tokens),
            }
            redis_queue = RunQueue(make_celery(Settings(broker_url=redis_db), url))
            pg_queue = RunQueue(make_celery(Settings(broker_url=None, database_url=url), url))
            # Both workers start together (their imports load the CPU); the Postgres one only
            # polls its (empty) queue while the Redis one is measured.
            workers = [
                Worker(
                    home, "redis", {**common, "AGENTMILL_BROKER_URL": redis_db}, args.concurrency
                )
            ]
            if not args.skip_postgres_broker:
                workers.append(Worker(home, "postgres", common, args.concurrency))
            try:
                for started in workers:
                    started.ready()
                print(f"[{time.monotonic() - t_start:.0f} s] workers ready", flush=True)
                plan = [
                    ("redis_memory_off", redis_queue, "memory_off", _prompts(args.runs)),
                    ("redis_memory_on", redis_queue, "memory_on", _prompts(args.memory_runs)),
                    ("redis_tools", redis_queue, "tools", _tool_prompts(args.tool_runs, rng)),
                ]
                if not args.skip_postgres_broker:
                    plan.append(
                        ("postgres_memory_off", pg_queue, "memory_off", _prompts(args.pg_runs))
                    )
                for name, queue, agent, prompts in plan:
                    if not prompts:
                        continue
                    warm = _prompts(args.warmup) if agent != "tools" else prompts[: args.warmup]
                    results[name] = scenario(
                        bench, queue, agents[agent], warm + prompts, args.warmup, args.pause, rng
                    )
                    print(f"[{time.monotonic() - t_start:.0f} s] {name} done", flush=True)
            finally:
                for started in workers:
                    started.stop()
                redis_queue.app.close()
                pg_queue.app.close()
        bench.close()
    except BaseException:
        print(f"failed; the servers' logs are in {home}", file=sys.stderr)
        raise
    finally:
        engine.dispose()
        pg.stop()
        client = redis.Redis.from_url(redis_db)
        client.flushdb()
        client.close()
    shutil.rmtree(home, ignore_errors=True)  # the stopped database and the logs (about 50 MB)

    load_after = os.getloadavg()
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    loads = f"load avg (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    print(f"machine: {machine}; {loads}; wall {time.monotonic() - t_start:.0f} s")
    print(
        f"{'scenario':<24}{'runs':>5}{'steps':>7}{'ovh p50':>9}{'ovh p99':>9}{'/step p50':>10}"
        f"{'/step p99':>10}{'e2s p50':>9}{'e2s p99':>9}{'model p50':>10}"
    )
    for name, row in results.items():
        steps = statistics.fmean([int(k) for k, v in row["steps"].items() for _ in range(v)] or [0])
        print(
            f"{name:<24}{row['runs']:>5}{steps:>7.2f}{row['overhead_ms']['p50']:>9.1f}"
            f"{row['overhead_ms']['p99']:>9.1f}{row['overhead_per_step_ms']['p50']:>10.1f}"
            f"{row['overhead_per_step_ms']['p99']:>10.1f}{row['enqueue_to_start_ms']['p50']:>9.1f}"
            f"{row['enqueue_to_start_ms']['p99']:>9.1f}{row['model_ms']['p50']:>10.0f}"
        )
    print(
        "phases p50 (ms): setup = started -> step.started; around model = step.started -> step "
        "row minus model; conclude = step row -> finished"
    )
    for name, row in results.items():
        phases = row["phases_ms_p50"]
        print(
            f"  {name:<22} setup {phases['setup']:.1f}  around model {phases['around_model']:.1f}"
            f"  conclude {phases['conclude']:.1f}; producer (create_run + commit + send) "
            f"{row['producer_ms']['p50']:.1f}; statuses {row['statuses']}"
        )
    off = results["redis_memory_off"]
    on = results["redis_memory_on"]
    e2s_redis = off["enqueue_to_start_ms"]["p50"]
    result = {
        "machine": machine,
        "load_avg_before": load_before,
        "load_avg_after": load_after,
        "max_output_tokens": args.max_output_tokens,
        "worker_concurrency": args.concurrency,
        "scenarios": results,
        "targets": {
            "overhead_p50_ms": TARGET_OVERHEAD_MS,
            "enqueue_to_start_p50_ms": TARGET_E2S_MS,
            "overhead_met_memory_off": off["overhead_ms"]["p50"] <= TARGET_OVERHEAD_MS,
            "overhead_met_memory_on": on["overhead_ms"]["p50"] <= TARGET_OVERHEAD_MS,
            "enqueue_to_start_met": e2s_redis <= TARGET_E2S_MS,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    pg_part = ""
    if "postgres_memory_off" in results:
        pg_e2s = results["postgres_memory_off"]["enqueue_to_start_ms"]
        pg_part = f", Postgres broker {pg_e2s['p50']:.0f} / {pg_e2s['p99']:.0f} ms"
    tools_part = ""
    if "redis_tools" in results:
        per_step = results["redis_tools"]["overhead_per_step_ms"]
        tools_part = f", with tools {per_step['p50']:.1f} ms per step"
    print(
        f"summary: overhead p50/p99 {off['overhead_ms']['p50']:.1f}/"
        f"{off['overhead_ms']['p99']:.1f} ms memory off, {on['overhead_ms']['p50']:.1f}/"
        f"{on['overhead_ms']['p99']:.1f} ms memory on{tools_part} (target p50 <= "
        f"{TARGET_OVERHEAD_MS:.0f}); enqueue-to-start p50/p99 Redis {e2s_redis:.1f}/"
        f"{off['enqueue_to_start_ms']['p99']:.1f} ms (target p50 <= {TARGET_E2S_MS:.0f})"
        f"{pg_part}"
    )


if __name__ == "__main__":
    main()
