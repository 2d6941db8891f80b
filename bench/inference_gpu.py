"""The transformers engine on a GPU, through the real serving path (HTTP server + `openai`).

1. Single-stream decode tok/s through our server against a plain `model.generate` (greedy,
   default cache) of the same model shape in the same run: the ratio is the figure.
2. Aggregate tok/s and time-to-first-token p50/p99 at each `--streams` concurrency.
3. `tool_choice: "required"` requests (sampled, temperature 0.8), all at once: how many came
   back as a valid call of the tool (arguments checked against its schema).

`--model-dir` holds a config.json and tokenizer files; without *.safetensors in it the weights
are random (`dummy_weights`): decode speed does not depend on weight values. The server runs
as its own process (this script with `--serve`), as in production; the clients run here.

    PYTHONPATH=. python bench/inference_gpu.py --model-dir DIR [--dtype bfloat16]
        [--streams 1,4,16,64] [--max-tokens 256] [--out /tmp/inference_gpu.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import torch
import transformers
from jsonschema import Draft202012Validator
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from core.web.threaded import free_port
from inference.server.chat_template import CHATML, ChatTemplate
from inference.wire import Message

PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm."
ARGUMENTS = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Paris", "Rome", "Lisbon"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "rain": {"type": "boolean"},
    },
    "required": ["city", "days", "rain"],
    "additionalProperties": False,
}
TOOL: Any = {"type": "function", "function": {"name": "get_weather", "parameters": ARGUMENTS}}
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _dummy(model_dir: Path) -> bool:
    return not any(model_dir.glob("*.safetensors"))


def _machine() -> dict[str, str]:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU (CPU)"
    return {
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def _shape(model_dir: Path) -> dict[str, Any]:
    cfg = AutoConfig.from_pretrained(model_dir, local_files_only=True).get_text_config()
    keys = (
        "model_type",
        "num_hidden_layers",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
    )
    return {key: getattr(cfg, key, None) for key in keys}


def _baseline(model_dir: Path, dtype: torch.dtype, tokens: int) -> dict[str, Any]:
    """Plain `model.generate`, one stream, greedy, exactly `tokens` new tokens."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if _dummy(model_dir):
        cfg = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        with device:
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)  # type: ignore[no-untyped-call]
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
        model.to(device)  # type: ignore[arg-type]  # a decorator hides the signature
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else CHATML
    prompt = ChatTemplate(template).render([Message(role="user", content=PROMPT)], [], None)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(device)
    kwargs: Any = {"do_sample": False, "attention_mask": torch.ones_like(ids)}
    kwargs["pad_token_id"] = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.generate(ids, max_new_tokens=8, **kwargs)  # warm-up
    rates = []
    for _ in range(3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - start))
    params = sum(p.numel() for p in model.parameters())
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"tok_s": statistics.median(rates), "prompt_tokens": ids.shape[1], "params": params}


def _serve(args: argparse.Namespace) -> None:
    """The server process: the engine behind the app, as `agentmill inference` builds it."""
    import uvicorn

    from inference.engines.hf.engine import TransformersEngine
    from inference.server.app import create_inference_app

    model_dir: Path = args.model_dir
    engine = TransformersEngine(
        model_dir,
        model_id="bench",
        dummy_weights=_dummy(model_dir),
        dtype=DTYPES[args.dtype],
        slots=max(_streams(args.streams)),
        max_waiting=1024,
        context_tokens=args.context,
    )
    app = create_inference_app(engine)
    uvicorn.run(app, host="127.0.0.1", port=args.serve, log_level="warning")


def _streams(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _stream(client: openai.AsyncOpenAI, tokens: int, seed: int) -> tuple[int, float, float]:
    start = time.perf_counter()
    first = 0.0
    count = 0
    stream = await client.chat.completions.create(
        model="bench",
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
    total = time.perf_counter() - start
    return count, first or total, total


async def _concurrent(client: openai.AsyncOpenAI, streams: int, tokens: int) -> dict[str, float]:
    start = time.perf_counter()
    results = await asyncio.gather(*(_stream(client, tokens, i) for i in range(streams)))
    wall = time.perf_counter() - start
    ttfts = [r[1] for r in results]
    return {
        "streams": streams,
        "aggregate_tok_s": sum(r[0] for r in results) / wall,
        "ttft_p50_s": _pct(ttfts, 0.5),
        "ttft_p99_s": _pct(ttfts, 0.99),
        "slowest_stream_tok_s": min(r[0] / r[2] for r in results),
        "decode_tok_s_after_first": statistics.median(
            (r[0] - 1) / max(r[2] - r[1], 1e-9) for r in results
        ),
        "completion_tokens": sum(r[0] for r in results),
    }


async def _tool_call(client: openai.AsyncOpenAI, seed: int) -> tuple[bool, int]:
    reply = await client.chat.completions.create(
        model="bench",
        messages=[{"role": "user", "content": "Will it rain in Lisbon in the next 3 days?"}],
        tools=[TOOL],
        tool_choice="required",
        temperature=0.8,
        seed=seed,
        max_tokens=128,
    )
    calls = reply.choices[0].message.tool_calls or []
    used = reply.usage.completion_tokens if reply.usage else 0
    if len(calls) != 1 or calls[0].type != "function" or calls[0].function.name != "get_weather":
        return False, used
    try:
        arguments = json.loads(calls[0].function.arguments)
    except json.JSONDecodeError:
        return False, used
    return Draft202012Validator(ARGUMENTS).is_valid(arguments), used


async def _tool_calls(client: openai.AsyncOpenAI, n: int) -> dict[str, Any]:
    start = time.perf_counter()
    results = await asyncio.gather(
        *(_tool_call(client, i) for i in range(n)), return_exceptions=True
    )
    wall = time.perf_counter() - start
    ok = [r for r in results if isinstance(r, tuple)]
    errors = [repr(r) for r in results if not isinstance(r, tuple)]
    return {
        "requests": n,
        "valid": sum(1 for valid, _ in ok if valid),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "aggregate_tok_s": sum(used for _, used in ok) / wall,
        "wall_s": wall,
    }


async def _measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    timeout = httpx.Timeout(600.0)
    async with openai.AsyncOpenAI(
        base_url=base + "/v1", api_key="-", max_retries=0, timeout=timeout
    ) as client:
        await _concurrent(client, 4, 16)  # warm-up
        single = [await _concurrent(client, 1, args.max_tokens) for _ in range(3)]
        rows = [await _concurrent(client, n, args.max_tokens) for n in _streams(args.streams)]
        tools = await _tool_calls(client, args.tool_requests) if args.tool_requests else {}
    return {"single": single, "concurrency": rows, "tool_calls": tools}


def _run_server(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port), "--model-dir", str(args.model_dir)]
    command += ["--dtype", args.dtype, "--streams", args.streams, "--context", str(args.context)]
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("inference server did not start")
            time.sleep(0.5)
        return asyncio.run(_measure(base, args))
    finally:
        process.terminate()
        process.wait(60)


def main() -> None:
    """Measure, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--streams", default="1,4,16,64", help="comma-separated concurrencies")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--tool-requests", type=int, default=64)
    parser.add_argument("--context", type=int, default=1024, help="tokens per request (server)")
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "inference_gpu.json"
    )
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args)
        return

    machine, shape = _machine(), _shape(args.model_dir)
    baseline = _baseline(args.model_dir, DTYPES[args.dtype], args.max_tokens)
    served = _run_server(args)
    ours = statistics.median(r["aggregate_tok_s"] for r in served["single"])
    rows = served["concurrency"]
    weights = "random" if _dummy(args.model_dir) else "real"
    print(f"\nmachine: {machine}")
    print(f"model: {shape}, {baseline['params'] / 1e6:.0f}M params, {args.dtype}, {weights}")
    print(f"prompt {baseline['prompt_tokens']} tokens, {args.max_tokens} new tokens per stream")
    print(
        f"\nsingle stream: model.generate {baseline['tok_s']:.1f} tok/s, our server {ours:.1f} "
        f"tok/s, ratio {ours / baseline['tok_s']:.2f}"
    )
    print(f"\n{'streams':>8}{'agg tok/s':>11}{'vs 1':>7}{'ttft p50':>10}{'ttft p99':>10}", end="")
    print(f"{'slowest':>9}")
    for row in rows:
        print(
            f"{row['streams']:>8.0f}{row['aggregate_tok_s']:>11.1f}"
            f"{row['aggregate_tok_s'] / rows[0]['aggregate_tok_s']:>7.2f}"
            f"{row['ttft_p50_s']:>10.3f}{row['ttft_p99_s']:>10.3f}"
            f"{row['slowest_stream_tok_s']:>9.1f}"
        )
    tools = served["tool_calls"]
    if tools:
        print(
            f"\ntool_choice required: {tools['valid']}/{tools['requests']} valid calls, "
            f"{tools['errors']} errors, {tools['aggregate_tok_s']:.1f} tok/s aggregate, "
            f"{tools['wall_s']:.1f} s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine, "model": shape, "weights": weights, "dtype": args.dtype}
    result |= {"max_tokens": args.max_tokens, "baseline": baseline, "server_single_tok_s": ours}
    result |= {"ratio": ours / baseline["tok_s"], **served}
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
