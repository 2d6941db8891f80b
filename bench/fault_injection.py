"""Fault injection, repeated: how many restarts the real stack survives and how many runs still
finish, with duplicate tool effects counted.

One `agentmill up` (embedded Postgres, bundled model, a worker on Redis, the API) runs the
rounds; each round starts runs and, once they are under way, SIGKILLs or SIGSEGVs the
inference server, shuts the embedded Postgres down immediately (SIGQUIT, as in a crash), or
SIGKILLs the worker while a tool that outlives the lease is running. Every run must finish
`succeeded`; every tool call's effect must happen at most once.

    .venv/bin/python bench/fault_injection.py --rounds 3

Needs Redis on 127.0.0.1:6379 (AGENTMILL_TEST_REDIS_URL overrides). Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test suite's process helpers (tests/ is not installed)

from tests.cli.up_process import Stack, postgres_of, start_stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LONG = "Write a long story about a lighthouse keeper and a storm, at least 300 words."


def _kill_child(stack: Stack, name: str, sig: signal.Signals) -> Callable[[], None]:
    return lambda: os.kill(stack.child(name).pid, sig)


def _quit(stack: Stack, home: Path) -> None:
    stack.postmaster(home).send_signal(signal.SIGQUIT)


def _round(stack: Stack, home: Path, fault: str) -> tuple[str, dict[str, int]]:
    """One run broken by `fault`; its final status."""
    if fault == "worker SIGKILL mid-tool":
        agent = stack.agent(
            name=f"t{time.monotonic_ns()}", tools=["slow_record"], tool_choice="required"
        )
        run_id = stack.start_run(agent, "Record the note 'hello'.")
        stack.wait_for(run_id, "tool.call")
        time.sleep(1)
        os.kill(stack.child("worker").pid, signal.SIGKILL)
    else:
        breakers: dict[str, Callable[[], None]] = {
            "inference SIGKILL": _kill_child(stack, "inference", signal.SIGKILL),
            "inference SIGSEGV": _kill_child(stack, "inference", signal.SIGSEGV),
            "postgres SIGQUIT": lambda: _quit(stack, home),
        }
        run_id = stack.start_run(stack.agent(name=f"a{time.monotonic_ns()}"), LONG)
        stack.wait_for(run_id, "message.delta")
        breakers[fault]()
    run = stack.finished(run_id)
    time.sleep(2)  # let the supervisor finish any restart before the next round
    return str(run["status"]), {"attempts": int(run["attempts"])}


def main() -> int:
    """Run the rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    redis_url = os.environ.get("AGENTMILL_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/14"
    tmp = Path(tempfile.mkdtemp(prefix="agentmill-faults-"))
    home = tmp / "home"
    # The faults are deliberate and come fast: lift the crash-loop limit for this run.
    stack = start_stack(home, tmp, redis_url, AGENTMILL_SUPERVISOR_MAX_RESTARTS="1000")
    faults = ["inference SIGKILL", "inference SIGSEGV", "postgres SIGQUIT"]
    faults.append("worker SIGKILL mid-tool")
    table: dict[str, dict[str, int]] = {f: {"runs": 0, "succeeded": 0} for f in faults}
    started = time.monotonic()
    try:
        for _ in range(args.rounds):
            for fault in faults:
                print(f"round: {fault}", flush=True)
                status, _ = _round(stack, home, fault)
                table[fault]["runs"] += 1
                table[fault]["succeeded"] += status == "succeeded"
        output = stack.up.output
    finally:
        stack.http.close()
        stack.up.terminate()
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "fault_injection_up.log").write_text(stack.up.output)
        for proc in postgres_of(home):
            proc.kill()
    starts: dict[str, int] = {}
    dones: dict[str, int] = {}
    for line in stack.record.read_text().splitlines() if stack.record.exists() else []:
        kind, call, _pid = line.split()
        (starts if kind == "start" else dones)[call] = (starts if kind == "start" else dones).get(
            call, 0
        ) + 1
    duplicates = sum(1 for n in starts.values() if n > 1) + sum(1 for n in dones.values() if n > 1)
    restarts = {
        "inference": output.count("inference exited with"),
        "worker": output.count("worker exited with"),
        "postgres": output.count("is not running; starting it again"),
    }
    print(f"{args.rounds} rounds in {time.monotonic() - started:.0f} s\n")
    print(f"{'fault':<26} {'runs':>5} {'succeeded':>10}")
    for fault, row in table.items():
        print(f"{fault:<26} {row['runs']:>5} {row['succeeded']:>10}")
    print(f"\nrestarts by the supervisor: {restarts}")
    print(
        f"tool calls: {len(starts)} started, {sum(dones.values())} finished effects, "
        f"duplicate effects: {duplicates}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fault_injection_{int(time.time())}.json"
    out.write_text(
        json.dumps(
            {
                "rounds": args.rounds,
                "table": table,
                "restarts": restarts,
                "tool_calls": len(starts),
                "duplicates": duplicates,
            }
        )
    )
    print(f"wrote {out}")
    shutil.rmtree(tmp, ignore_errors=True)
    failed = any(r["succeeded"] != r["runs"] for r in table.values()) or duplicates
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
