"""Inference figures for the llama.cpp engine with the bundled SmolLM2-135M-Instruct (Q4_1).

1. Single-stream decode tok/s through our server (HTTP, streaming, the real `openai` client)
   against llama-cpp-python's `Llama` called directly: same model, same threads, same greedy
   prompt, in one run (the ratio is the figure).
2. Aggregate tok/s and time-to-first-token p50/p99 at 1, 4 and 16 concurrent streams.
3. Prefix reuse: prompt tokens evaluated per step of a 6-step agent-like conversation, with
   the prefix cache and with it disabled.

The server runs as its own process (`agentmill inference`), as in production; the clients run
in this process. Prints tables, writes bench/results/inference_throughput.json.

    .venv/bin/python bench/inference_throughput.py [--tokens 128] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
from llama_cpp import Llama

from core.web.threaded import free_port
from inference.bundled import BUNDLED_MODEL_ID
from inference.engines.llama.engine import default_threads
from inference.engines.llama.native import bundled_gguf

PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."


def _direct(threads: int, tokens: int) -> float:
    llm = Llama(
        str(bundled_gguf()), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    messages: Any = [{"role": "user", "content": PROMPT}]
    llm.create_chat_completion(messages=messages, max_tokens=8, temperature=0)  # warm-up
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        out: Any = llm.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0)
        rates.append(float(out["usage"]["completion_tokens"]) / (time.perf_counter() - start))
    llm.close()
    return statistics.median(rates)


async def _stream(client: openai.AsyncOpenAI, tokens: int, seed: int) -> tuple[int, float, float]:
    start = time.perf_counter()
    first = 0.0
    count = 0
    stream = await client.chat.completions.create(
        model=BUNDLED_MODEL_ID,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=tokens,
        temperature=0,
        seed=seed,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and not first:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
    return count, first, time.perf_counter() - start


async def _concurrent(base: str, streams: int, tokens: int) -> dict[str, float]:
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="-", max_retries=0) as client:
        await _stream(client, 8, 0)  # warm-up
        start = time.perf_counter()
        results = await asyncio.gather(*(_stream(client, tokens, i) for i in range(streams)))
        wall = time.perf_counter() - start
    ttfts = sorted(r[1] for r in results)
    per_stream = [r[0] / r[2] for r in results]
    return {
        "streams": streams,
        "aggregate_tok_s": sum(r[0] for r in results) / wall,
        "ttft_p50_s": statistics.median(ttfts),
        "ttft_p99_s": ttfts[min(len(ttfts) - 1, round(0.99 * (len(ttfts) - 1)))],
        "slowest_stream_tok_s": min(per_stream),
        "fastest_stream_tok_s": max(per_stream),
    }


async def _agent(base: str, steps: int) -> list[dict[str, int]]:
    messages: Any = [
        {"role": "system", "content": "You are a careful planning agent. " * 30},
        {"role": "user", "content": "Plan a three-day trip to Lisbon."},
    ]
    rows = []
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="-", max_retries=0) as client:
        for step in range(steps):
            reply = await client.chat.completions.create(
                model=BUNDLED_MODEL_ID,
                messages=messages,
                max_tokens=48,
                temperature=0,
            )
            usage = reply.usage
            assert usage is not None
            cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
            rows.append(
                {
                    "step": step + 1,
                    "prompt_tokens": usage.prompt_tokens,
                    "evaluated": usage.prompt_tokens - (cached or 0),
                }
            )
            messages.append(
                {"role": "assistant", "content": reply.choices[0].message.content or ""}
            )
            messages.append(
                {"role": "user", "content": f"Observation {step + 1}: noted. Continue."}
            )
    return rows


@contextmanager
def _server(threads: int, slots: int, context: int, reuse: bool) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "AGENTMILL_INFERENCE_PORT": str(port),
        "AGENTMILL_INFERENCE_THREADS": str(threads),
        "AGENTMILL_INFERENCE_SLOTS": str(slots),
        "AGENTMILL_INFERENCE_CONTEXT": str(context),
        "AGENTMILL_INFERENCE_PREFIX_REUSE": str(reuse).lower(),
        "AGENTMILL_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "inference"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("inference server did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    """Run all three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()

    direct = _direct(args.threads, args.tokens)
    with _server(args.threads, 16, 1024, reuse=True) as base:
        single = [asyncio.run(_concurrent(base, 1, args.tokens)) for _ in range(3)]
        ours = statistics.median(r["aggregate_tok_s"] for r in single)
        concurrency = [single[1]] + [
            asyncio.run(_concurrent(base, n, args.tokens)) for n in (4, 16)
        ]
        with_reuse = asyncio.run(_agent(base, 6))
    with _server(args.threads, 4, 2048, reuse=False) as base:
        without_reuse = asyncio.run(_agent(base, 6))

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}; threads {args.threads}; {args.tokens} tokens per stream")
    print(
        f"\nsingle stream: llama-cpp-python direct {direct:.1f} tok/s, our server {ours:.1f} "
        f"tok/s, ratio {ours / direct:.2f}"
    )
    print(
        f"\n{'streams':>8}{'agg tok/s':>11}{'vs 1':>7}{'ttft p50':>10}{'ttft p99':>10}"
        f"{'slowest':>9}"
    )
    for row in concurrency:
        print(
            f"{row['streams']:>8.0f}{row['aggregate_tok_s']:>11.1f}"
            f"{row['aggregate_tok_s'] / concurrency[0]['aggregate_tok_s']:>7.2f}"
            f"{row['ttft_p50_s']:>10.3f}{row['ttft_p99_s']:>10.3f}"
            f"{row['slowest_stream_tok_s']:>9.1f}"
        )
    print(f"\n{'step':>5}{'prompt':>8}{'evaluated (reuse)':>19}{'evaluated (no reuse)':>22}")
    for a, b in zip(with_reuse, without_reuse, strict=True):
        print(f"{a['step']:>5}{a['prompt_tokens']:>8}{a['evaluated']:>19}{b['evaluated']:>22}")
    total_a = sum(r["evaluated"] for r in with_reuse)
    total_b = sum(r["evaluated"] for r in without_reuse)
    print(f"total evaluated: {total_a} with reuse, {total_b} without ({total_a / total_b:.2f}x)")
    out = Path(__file__).parent / "results" / "inference_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": machine,
                "threads": args.threads,
                "tokens": args.tokens,
                "direct_tok_s": direct,
                "server_tok_s": ours,
                "ratio": ours / direct,
                "concurrency": concurrency,
                "agent_with_reuse": with_reuse,
                "agent_without_reuse": without_reuse,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
