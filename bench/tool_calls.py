"""Tool calls and JSON output that always close: our server against llama-cpp-python's own.

The same 249 cases (bench/tool_calls_cases.py, 246 distinct parameter schemas written for this
benchmark) go through the official `openai` client, temperature 0, to (a) `agentmill
inference` and (b) `python -m llama_cpp.server --chat_format chatml-function-calling`, both
serving the bundled SmolLM2-135M-Instruct GGUF with the same threads, one request at a time,
alternating between the servers case by case. Modes: `tool_choice` required (the function
plus two distractors), named, auto (and 50 requests that need no tool), and `response_format:
json_schema`, at `max_tokens` 256 and 64. Per mode: parse rate, schema-valid rate, exact-argument
match (right function, arguments equal to the expected ones: numbers by value, strings ignoring
case), tool-call rate for auto; a server error counts as not parsed. Prints the table and
writes bench/results/tool_calls.json.

    .venv/bin/python -m bench.tool_calls [--limit N] [--threads N] [--only ours|stock]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

from bench.tool_calls_cases import CASES, NO_TOOL_PROMPTS
from bench.tool_calls_score import Result, request, score
from core.web.threaded import free_port
from inference.bundled import BUNDLED_MODEL_ID
from inference.engines.llama.engine import default_threads
from inference.engines.llama.native import bundled_gguf

RUNS = [
    ("required", 256),
    ("required", 64),
    ("named", 256),
    ("named", 64),
    ("auto", 256),
    ("json_schema", 256),
    ("json_schema", 64),
]


def _wait(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.3)


@contextmanager
def _process(command: list[str], env: dict[str, str], health: str, what: str) -> Iterator[None]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(health, process, what)
        yield
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def servers(threads: int, only: str | None) -> Iterator[dict[str, str]]:
    """Start the servers; yield {name: base URL ending in /v1}."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        if only in (None, "ours"):
            port = free_port()
            env = {
                **os.environ,
                "AGENTMILL_INFERENCE_PORT": str(port),
                "AGENTMILL_INFERENCE_THREADS": str(threads),
                "AGENTMILL_LOG_LEVEL": "WARNING",
            }
            command = [sys.executable, "-m", "cli.main", "inference"]
            stack.enter_context(_process(command, env, f"http://127.0.0.1:{port}/healthz", "ours"))
            urls["ours"] = f"http://127.0.0.1:{port}/v1"
        if only in (None, "stock"):
            port = free_port()
            command = [
                *(sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf())),
                *("--chat_format", "chatml-function-calling", "--n_ctx", "4096"),
                *("--n_threads", str(threads), "--port", str(port), "--verbose", "false"),
            ]
            health = f"http://127.0.0.1:{port}/v1/models"
            stack.enter_context(_process(command, dict(os.environ), health, "llama_cpp.server"))
            urls["stock"] = f"http://127.0.0.1:{port}/v1"
        yield urls


def _one(
    client: openai.OpenAI,
    server: str,
    mode: str,
    budget: int,
    index: int,
    prompt: str,
    needs_tool: bool,
) -> Result:
    result = Result(server, mode, budget, CASES[index].name, needs_tool)
    body = request(mode, budget, prompt, index, server)
    model = BUNDLED_MODEL_ID if server == "ours" else "smollm2"
    start = time.perf_counter()
    try:
        reply = client.chat.completions.create(model=model, **body)
    except openai.APIStatusError as exc:
        result.status = exc.status_code
        result.output = str(exc)[:200]
    except openai.APIConnectionError as exc:
        result.status = 0
        result.output = str(exc)[:200]
    else:
        score(result, reply, index)
    result.seconds = time.perf_counter() - start
    return result


def run(urls: dict[str, str], limit: int) -> list[Result]:
    """Every run in RUNS over the first `limit` cases, alternating servers per request."""
    clients = {
        s: openai.OpenAI(base_url=u, api_key="-", max_retries=0, timeout=300)
        for s, u in urls.items()
    }
    results: list[Result] = []
    # Evenly spread over the set, so a shorter run still sees every kind of schema.
    count = min(limit, len(CASES))
    indices = [i * len(CASES) // count for i in range(count)]
    for mode, budget in RUNS:
        work = [(i, CASES[i].prompt, True) for i in indices]
        if mode == "auto":
            no_tool = NO_TOOL_PROMPTS[: max(1, len(NO_TOOL_PROMPTS) * len(indices) // len(CASES))]
            work += [(indices[j % count], p, False) for j, p in enumerate(no_tool)]
        started = time.perf_counter()
        for i, prompt, needs_tool in work:
            for server, client in clients.items():
                results.append(_one(client, server, mode, budget, i, prompt, needs_tool))
        print(
            f"  {mode} @ {budget}: {len(work)} requests per server, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return results


def summarise(results: list[Result]) -> list[dict[str, Any]]:
    """One row per (mode, budget, server)."""
    rows = []
    keys = dict.fromkeys((r.mode, r.budget, r.server) for r in results)
    for mode, budget, server in keys:
        group = [r for r in results if (r.mode, r.budget, r.server) == (mode, budget, server)]
        tool_cases = [r for r in group if r.needs_tool]
        no_tool = [r for r in group if not r.needs_tool]
        n = len(tool_cases)
        rows.append(
            {
                "mode": mode,
                "max_tokens": budget,
                "server": server,
                "cases": n,
                "errors": sum(r.status != 200 for r in tool_cases),
                "parsed": sum(r.parsed for r in tool_cases) / n,
                "valid": sum(r.valid for r in tool_cases) / n,
                "exact": sum(r.exact for r in tool_cases) / n,
                "called": sum(r.called for r in tool_cases) / n,
                "called_without_need": (
                    sum(r.called for r in no_tool) / len(no_tool) if no_tool else None
                ),
                "shortened": sum(r.shortened for r in tool_cases),
                "mean_tokens": sum(r.completion_tokens for r in tool_cases) / n,
                "mean_seconds": sum(r.seconds for r in tool_cases) / n,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """The markdown table docs/benchmarks.md carries."""
    print(
        "\n| mode | max_tokens | server | parsed | schema-valid | exact args | tool-call rate "
        "(needs one / needs none) | shortened | HTTP errors | mean tokens | mean s |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        rate = (
            f"{r['called']:.0%} / {r['called_without_need']:.0%}"
            if r["called_without_need"] is not None
            else ""
        )
        print(
            f"| {r['mode']} | {r['max_tokens']} | {r['server']} | {r['parsed']:.1%} | "
            f"{r['valid']:.1%} | {r['exact']:.1%} | {rate} | {r['shortened']} | "
            f"{r['errors']}/{r['cases']} | {r['mean_tokens']:.0f} | {r['mean_seconds']:.2f} |"
        )


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=len(CASES), help="N cases, evenly spread over the set"
    )
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--only", choices=["ours", "stock"], default=None)
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}; threads {args.threads}; {min(args.limit, len(CASES))} cases")
    with servers(args.threads, args.only) as urls:
        results = run(urls, args.limit)
    rows = summarise(results)
    print_table(rows)
    out = Path(__file__).parent / "results" / "tool_calls.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": machine,
                "threads": args.threads,
                "summary": rows,
                "results": [r.row() for r in results],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
