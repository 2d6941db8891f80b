"""API load: concurrent streaming sessions, then batch throughput, against the whole stack.

Unless --base-url is given, the benchmark starts the stack `make run` starts (`agentmill up`:
embedded Postgres, the inference server with the bundled model, a Celery worker on the
embedded Postgres broker, the API) in a temporary home on free ports, and stops it at the end.
Everything goes through the Python SDK's AsyncClient, as a user's code would.

1. Sessions: --sessions (50) end users each open a session with one agent and, for --duration
   (60) seconds, send a message and follow its run's event stream to the final event, then
   send the next. Reported: messages sent, request errors (anything the SDK raised, after its
   own retries and reconnects; target 0), how the runs ended, and p50/p99 latency from sending
   the message to its first event (`run.queued`, which the API writes in the transaction that
   creates the run), to the first streamed token and to the final event. Before the load: one
   warm-up run (it loads the models), then the same figures for --baseline (10) messages sent
   one at a time on the idle stack, the baseline the load's figures are compared with. Runs
   queue behind the worker's concurrency and the one model server, so time to first token
   grows with load; time to first event is the API's own.
2. Batches: --items (100) single-question items on the bundled model, at concurrency 1 and 4
   (one batch each, one after the other), items per minute from the batch's creation to its
   last item finishing.

    .venv/bin/python bench/api_load.py [--sessions 50] [--duration 60] [--items 100]
        [--baseline 10] [--base-url URL --api-key KEY] [--skip-batches] [--skip-sessions]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import agentmill
import httpx
from agentmill import MessageDeltaEvent, RunFinishedEvent

from core.web.threaded import free_port

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 600.0
INSTRUCTIONS = "You are a terse assistant. Answer in one short sentence."
QUESTIONS = (
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Say hello in Spanish.",
)


@dataclass
class Stack:
    """Where the API is and the key to use."""

    base_url: str
    api_key: str


@contextlib.contextmanager
def _started_stack() -> Iterator[Stack]:
    """`agentmill up` in a temporary home on free ports; stopped with SIGINT at the end."""
    with tempfile.TemporaryDirectory(prefix="agentmill-load-") as home:
        api_port, inference_port = free_port(), free_port()
        env = {
            **os.environ,
            "AGENTMILL_HOME": home,
            "AGENTMILL_API_PORT": str(api_port),
            "AGENTMILL_INFERENCE_PORT": str(inference_port),
        }
        log_path = Path(home) / "up.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "up"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{api_port}"
        try:
            _wait_ready(base_url, process, log_path)
            key = (Path(home) / "api-key").read_text().strip()
            yield Stack(base_url, key)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"agentmill up exited:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"agentmill up not ready after {READY_TIMEOUT_S:.0f}s")


@dataclass
class SessionFigures:
    """What the session workers saw, in seconds."""

    first_event: list[float] = field(default_factory=list)
    first_token: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    sent: int = 0
    errors: list[str] = field(default_factory=list)
    endings: Counter[str] = field(default_factory=Counter)


async def _session_worker(
    client: agentmill.AsyncClient,
    agent_id: str,
    number: int,
    deadline: float,
    figures: SessionFigures,
    limit: int | None = None,
) -> None:
    session = await client.sessions.create(agent_id, user_id=f"load-user-{number}")
    turn = 0
    while time.monotonic() < deadline and (limit is None or turn < limit):
        question = QUESTIONS[(number + turn) % len(QUESTIONS)]
        turn += 1
        figures.sent += 1
        start = time.perf_counter()
        first = first_token = None
        final: RunFinishedEvent | None = None
        try:
            async with client.sessions.stream(session.id, question) as events:
                async for event in events:
                    now = time.perf_counter() - start
                    if first is None:
                        first = now
                    if first_token is None and isinstance(event, MessageDeltaEvent):
                        first_token = now
                    if isinstance(event, RunFinishedEvent):
                        final = event
        except agentmill.AgentmillError as exc:
            figures.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if first is not None:
            figures.first_event.append(first)
        if first_token is not None:
            figures.first_token.append(first_token)
        figures.finished.append(time.perf_counter() - start)
        figures.endings[final.type if final else "no final event"] += 1
        if final is not None and final.error:
            figures.errors.append(f"run {final.type}: {final.error.get('message')}")


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms / p99 {p99 * 1000:.0f} ms"


async def _create_agent(client: agentmill.AsyncClient, name: str) -> str:
    agent = await client.agents.create(name=name, instructions=INSTRUCTIONS)
    return str(agent.id)


async def _warm_up(client: agentmill.AsyncClient, agent_id: str) -> None:
    """One run first, so that loading the models in the worker is not in the figures."""
    session = await client.sessions.create(agent_id, user_id="load-warm-up")
    run = await client.sessions.send(session.id, QUESTIONS[0], timeout_s=300)
    if run.status != "succeeded":
        raise SystemExit(f"the warm-up run ended {run.status}: {run.error}")


def _report_sessions(title: str, figures: SessionFigures) -> None:
    print(
        f"{title}: {figures.sent} messages, {len(figures.errors)} request errors, "
        f"runs ended {dict(figures.endings)}",
        flush=True,
    )
    print(f"  to first event:  {_quantiles(figures.first_event)}", flush=True)
    print(f"  to first token:  {_quantiles(figures.first_token)}", flush=True)
    print(f"  to final event:  {_quantiles(figures.finished)}", flush=True)
    for error in sorted(set(figures.errors))[:10]:
        print(f"  error: {error} (x{figures.errors.count(error)})", flush=True)


async def run_sessions(
    stack: Stack, sessions: int, duration_s: float, baseline: int
) -> tuple[SessionFigures, SessionFigures]:
    """`baseline` messages of one session, each sent when the last run has finished (an idle
    stack), then `sessions` concurrent users streaming messages for `duration_s` seconds."""
    idle = SessionFigures()
    figures = SessionFigures()
    limits = httpx.Limits(max_connections=sessions * 2, max_keepalive_connections=sessions * 2)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    async with agentmill.AsyncClient(
        stack.api_key, base_url=stack.base_url, timeout_s=120, transport=transport
    ) as client:
        agent_id = await _create_agent(client, f"load-{int(time.time())}")
        await _warm_up(client, agent_id)
        await _session_worker(client, agent_id, -1, float("inf"), idle, limit=baseline)
        _report_sessions(f"baseline: 1 session, {baseline} messages one after another", idle)
        deadline = time.monotonic() + duration_s
        started = time.monotonic()
        results = await asyncio.gather(
            *(_session_worker(client, agent_id, n, deadline, figures) for n in range(sessions)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
    for result in results:
        if isinstance(result, BaseException):
            figures.errors.append(f"session worker died: {type(result).__name__}: {result}")
    title = f"load: {sessions} sessions for {duration_s:.0f} s (last run ended at {elapsed:.0f} s)"
    _report_sessions(title, figures)
    return idle, figures


async def _batch_throughput(
    http: httpx.AsyncClient, agent_id: str, items: int, concurrency: int
) -> tuple[float, dict[str, int]]:
    body = {
        "agent_id": agent_id,
        "concurrency": concurrency,
        "items": [
            {"input": f"What is {n} plus {n + 1}? Answer with the number.", "user_id": "batch"}
            for n in range(items)
        ],
    }
    started = time.monotonic()
    created = (await http.post("/v1/batches", json=body)).raise_for_status().json()
    batch_id = created["id"]
    reported = started
    while True:
        batch = (await http.get(f"/v1/batches/{batch_id}")).raise_for_status().json()
        if batch["status"] not in ("queued", "running"):
            break
        if time.monotonic() - reported >= 60:
            reported = time.monotonic()
            done = items - batch["counts"]["queued"] - batch["counts"]["running"]
            done -= batch["counts"]["pending"]
            print(f"  ... {done}/{items} done after {reported - started:.0f} s", flush=True)
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - started
    counts: dict[str, int] = batch["counts"]
    return items / (elapsed / 60), counts


async def run_batches(stack: Stack, items: int) -> dict[int, float]:
    """Items per minute at concurrency 1 and 4."""
    figures: dict[int, float] = {}
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with (
        agentmill.AsyncClient(stack.api_key, base_url=stack.base_url) as client,
        httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=60) as http,
    ):
        agent_id = await _create_agent(client, f"batch-{int(time.time())}")
        await _warm_up(client, agent_id)
        for concurrency in (1, 4):
            per_minute, counts = await _batch_throughput(http, agent_id, items, concurrency)
            figures[concurrency] = per_minute
            print(
                f"batch: {items} items at concurrency {concurrency}: {per_minute:.1f} items/min "
                f"(counts {counts})",
                flush=True,
            )
    return figures


async def _main(args: argparse.Namespace, stack: Stack) -> None:
    print(
        f"# api_load on {platform.node()} ({os.cpu_count()} cores), load average "
        f"{os.getloadavg()[0]:.1f}, API {stack.base_url}",
        flush=True,
    )
    summary: list[str] = []
    if not args.skip_sessions:
        idle, figures = await run_sessions(stack, args.sessions, args.duration, args.baseline)
        ordered = sorted(figures.first_event) or [float("nan")]
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        ratio = statistics.median(ordered) / statistics.median(idle.first_event or [float("nan")])
        summary.append(
            f"{args.sessions} sessions: {figures.sent} messages, {len(figures.errors)} errors, "
            f"first event p50 {statistics.median(ordered) * 1000:.0f} ms p99 {p99 * 1000:.0f} ms "
            f"({ratio:.1f}x idle)"
        )
    if not args.skip_batches:
        per_minute = await run_batches(stack, args.items)
        summary.append(
            "batch items/min: "
            + ", ".join(f"conc {c} {rate:.1f}" for c, rate in sorted(per_minute.items()))
        )
    print(f"api_load: {'; '.join(summary)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of session load")
    parser.add_argument("--items", type=int, default=100, help="items per batch")
    parser.add_argument("--baseline", type=int, default=10, help="idle messages before the load")
    parser.add_argument("--base-url", help="an API already running (default: start one)")
    parser.add_argument("--api-key", help="its key (with --base-url)")
    parser.add_argument("--skip-sessions", action="store_true")
    parser.add_argument("--skip-batches", action="store_true")
    args = parser.parse_args()
    if args.base_url:
        if not args.api_key:
            parser.error("--base-url needs --api-key")
        asyncio.run(_main(args, Stack(args.base_url, args.api_key)))
        return
    with _started_stack() as stack:
        asyncio.run(_main(args, stack))


if __name__ == "__main__":
    main()
