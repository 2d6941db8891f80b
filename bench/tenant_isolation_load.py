"""Tenant isolation under load: one tenant's flood of event streams or made-up API keys against
another tenant's request latency.

Starts an embedded Postgres in a temporary home and serves the real app with uvicorn on
loopback in a child process (runs stay queued: no worker, so every stream stays open). A victim
tenant makes sequential `GET /v1/agents/{id}` requests (key lookup, rate limit, one read) while
an attacker process floods the API: `streams` (many concurrent SSE streams of its queued runs,
reconnecting at once when refused), `fake-keys` (well-formed random keys as fast as it can), or
both. Each phase lasts a bounded time; the whole run stops by itself. It runs twice: with the
default guards, and with them loosened (stream caps huge, no failed-auth limit, no key cache,
no refusal hold) as the code before them behaved. Prints a table, writes JSON to
bench/results/tenant_isolation_load.json.

    .venv/bin/python bench/tenant_isolation_load.py [--seconds 20] [--streams 200] [--keys 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import secrets
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

GUARDED: dict[str, Any] = {}
LOOSE: dict[str, Any] = {
    "api_max_streams_per_tenant": 10_000,
    "api_max_streams": 100_000,
    "auth_failures_per_minute": 0,
    "auth_cache_ttl_s": 0.0,
    "api_refusal_hold_s": 0.0,
}
PHASES = ("idle", "streams", "fake-keys", "both")


class _NoQueue:
    """Runs are recorded in the database only: no worker takes them."""

    def enqueue_run(self, run_id: uuid.UUID) -> None:
        """Leave the run queued."""

    def enqueue_facts(self, run_id: uuid.UUID) -> None:
        """No fact extraction."""


def _serve(database_url: str, home: str, port: int, overrides: dict[str, Any]) -> None:
    import uvicorn

    from api.app import create_app
    from core.config import Settings
    from core.db import create_db_engine

    settings = Settings(home=Path(home), database_url=database_url, **overrides)
    engine = create_db_engine(database_url)
    app = create_app(settings, engine, run_queue=_NoQueue())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def _streams(base: str, key: str, runs: list[str], n: int, until: float) -> Counter[str]:
    seen: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def hold(i: int) -> None:
            while time.monotonic() < until:
                url = f"/v1/runs/{runs[i % len(runs)]}/events"
                try:
                    async with client.stream("GET", url, headers=headers) as response:
                        seen[str(response.status_code)] += 1
                        if response.status_code == 200:
                            async with asyncio.timeout(max(0.0, until - time.monotonic())):
                                async for _ in response.aiter_raw():
                                    pass
                        else:
                            await asyncio.sleep(0.05)
                except (TimeoutError, httpx.HTTPError):
                    seen["closed"] += 1

        await asyncio.gather(*(hold(i) for i in range(n)))
    return seen


async def _fake_keys(base: str, n: int, until: float) -> Counter[str]:
    seen: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def knock() -> None:
            while time.monotonic() < until:
                fake = f"am_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
                try:
                    answer = await client.get("/v1/me", headers={"Authorization": f"Bearer {fake}"})
                    seen[str(answer.status_code)] += 1
                except httpx.HTTPError:
                    seen["error"] += 1

        await asyncio.gather(*(knock() for _ in range(n)))
    return seen


def _attack(
    base: str, phase: str, key: str, runs: list[str], args: dict[str, int], until: float, out: Any
) -> None:
    async def both() -> dict[str, dict[str, int]]:
        jobs: dict[str, Any] = {}
        if phase in ("streams", "both"):
            jobs["streams"] = _streams(base, key, runs, args["streams"], until)
        if phase in ("fake-keys", "both"):
            jobs["fake_keys"] = _fake_keys(base, args["keys"], until)
        results = await asyncio.gather(*jobs.values())
        return {name: dict(r) for name, r in zip(jobs, results, strict=True)}

    out.put(asyncio.run(both()))


def _victim(base: str, key: str, agent: str, until: float, most: int) -> list[float]:
    out: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        while time.monotonic() < until and len(out) < most:
            start = time.perf_counter()
            answer = client.get(f"/v1/agents/{agent}", headers=headers)
            out.append((time.perf_counter() - start) * 1000)
            answer.raise_for_status()
            time.sleep(0.05)  # a steady caller, under its own rate limit (20 a second)
    return out


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def _setup(base: str, attacker_key: str, victim_key: str, n_runs: int) -> tuple[str, list[str]]:
    with httpx.Client(base_url=base, timeout=30) as client:
        victim = {"Authorization": f"Bearer {victim_key}"}
        attacker = {"Authorization": f"Bearer {attacker_key}"}
        agent = client.post("/v1/agents", json={"name": "victim"}, headers=victim).json()["id"]
        runs = []
        for i in range(n_runs):
            theirs = client.post("/v1/agents", json={"name": f"a{i}"}, headers=attacker).json()
            chat = client.post(f"/v1/agents/{theirs['id']}/sessions", headers=attacker).json()
            posted = client.post(
                f"/v1/sessions/{chat['id']}/messages", json={"content": "hi"}, headers=attacker
            )
            runs.append(posted.json()["id"])
    return agent, runs


def _run_mode(
    url: str, home: Path, overrides: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    from core.db import create_db_engine, transaction
    from core.tenants import create_key, ensure_tenant
    from core.web.threaded import free_port

    engine = create_db_engine(url)
    with transaction(engine) as session:
        victim_id, _ = ensure_tenant(session, f"victim-{uuid.uuid4().hex[:6]}")
        attacker_id, _ = ensure_tenant(session, f"attacker-{uuid.uuid4().hex[:6]}")
        victim_key = create_key(session, victim_id)
        attacker_key = create_key(session, attacker_id)
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    server = ctx.Process(target=_serve, args=(url, str(home), port, overrides), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or not server.is_alive():
                raise RuntimeError("the API did not start") from None
            time.sleep(0.2)
    results: dict[str, Any] = {}
    try:
        agent, runs = _setup(base, attacker_key, victim_key, n_runs=20)
        _victim(base, victim_key, agent, time.monotonic() + 1.0, 100)  # warm-up
        for phase in PHASES:
            until = time.monotonic() + args.seconds
            attacker = None
            queue: Any = ctx.Queue()
            if phase != "idle":
                limits = {"streams": args.streams, "keys": args.keys}
                attacker = ctx.Process(
                    target=_attack,
                    args=(base, phase, attacker_key, runs, limits, until + 1.0, queue),
                    daemon=True,
                )
                attacker.start()
                time.sleep(1.0)  # let the flood build up before measuring
            latencies = _victim(base, victim_key, agent, until + (1.0 if attacker else 0), 5000)
            flood = queue.get(timeout=60) if attacker is not None else {}
            if attacker is not None:
                attacker.join(30)
            results[phase] = {
                "requests": len(latencies),
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(_pct(latencies, 99), 2),
                "attacker": flood,
            }
            time.sleep(1.5)  # streams closed, buckets refilled a little
    finally:
        server.terminate()
        server.join(15)
    return results


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="victim time per phase")
    parser.add_argument("--streams", type=int, default=200, help="attacker's concurrent streams")
    parser.add_argument("--keys", type=int, default=32, help="attacker's concurrent fake keys")
    args = parser.parse_args()

    from core import migrate
    from core.db import create_db_engine
    from core.embedded_pg import EmbeddedPostgres

    home = Path(tempfile.mkdtemp(prefix="agentmill-bench-"))
    pg = EmbeddedPostgres(home)
    url = pg.start()
    try:
        engine = create_db_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        modes = {
            "guarded": _run_mode(url, home, GUARDED, args),
            "loose": _run_mode(url, home, LOOSE, args),
        }
    finally:
        pg.stop()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'mode':8} {'phase':10} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99/idle':>9}  attacker")
    for mode, phases in modes.items():
        idle = phases["idle"]["p99_ms"]
        for phase, row in phases.items():
            ratio = row["p99_ms"] / idle
            row["p99_vs_idle"] = round(ratio, 2)
            print(
                f"{mode:8} {phase:10} {row['requests']:>5} {row['p50_ms']:>8.2f} "
                f"{row['p99_ms']:>8.2f} {ratio:>9.2f}  {json.dumps(row['attacker'])}"
            )
    out = Path(__file__).parent / "results" / "tenant_isolation_load.json"
    out.parent.mkdir(exist_ok=True)
    record = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "args": vars(args),
        "modes": modes,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
