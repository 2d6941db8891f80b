"""Foundation figures: embedded Postgres start/stop time, and the cost of API-key auth.

Starts a real embedded server in a temporary home, times cold (initdb) and warm starts, then
serves the real app with uvicorn on loopback and measures request latency of `/healthz`
(no auth, no database) against `/v1/me` (bearer key resolved in Postgres) in the same run.
Prints a table, writes JSON to bench/results/startup_and_auth.json.

    .venv/bin/python bench/startup_and_auth.py [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from api.app import create_app
from core import migrate
from core.config import Settings
from core.db import create_db_engine, transaction
from core.embedded_pg import EmbeddedPostgres
from core.tenants import create_key, ensure_tenant
from core.web.threaded import serve_in_thread


def _latencies_ms(client: httpx.Client, path: str, n: int, headers: dict[str, str]) -> list[float]:
    for _ in range(20):  # warm-up: connection pool, first queries
        client.get(path, headers=headers).raise_for_status()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        client.get(path, headers=headers).raise_for_status()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="agentmill-bench-"))
    pg = EmbeddedPostgres(home)
    t0 = time.perf_counter()
    pg.start()
    cold_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    pg.stop()
    stop = time.perf_counter() - t0
    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        pg.start()
        warm.append(time.perf_counter() - t0)
        pg.stop()

    url = pg.start()
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "bench")
        key = create_key(session, tenant_id)
    app = create_app(Settings(home=home, database_url=url), engine)
    bearer = {"Authorization": f"Bearer {key}"}
    try:
        with serve_in_thread(app) as base, httpx.Client(base_url=base) as client:
            health = _latencies_ms(client, "/healthz", args.requests, {})
            auth = _latencies_ms(client, "/v1/me", args.requests, bearer)
    finally:
        pg.stop()

    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "embedded_pg_cold_start_s": cold_start,
        "embedded_pg_warm_start_s_median": statistics.median(warm),
        "embedded_pg_stop_s": stop,
        "requests": args.requests,
        "healthz_ms_p50": statistics.median(health),
        "healthz_ms_p99": _pct(health, 99),
        "me_ms_p50": statistics.median(auth),
        "me_ms_p99": _pct(auth, 99),
        "auth_overhead_ms_p50": statistics.median(auth) - statistics.median(health),
        "me_over_healthz_p50_ratio": statistics.median(auth) / statistics.median(health),
    }
    print(f"machine: {result['machine']}")
    print(f"{'figure':<34}{'value':>10}")
    for name, value in result.items():
        if isinstance(value, float):
            print(f"{name:<34}{value:>10.3f}")
    out = Path(__file__).parent / "results" / "startup_and_auth.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
