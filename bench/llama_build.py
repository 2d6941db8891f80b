"""What a llama.cpp build level costs: the bundled model's prompt and decode speed per build.

Each build is a llama-cpp-python installed in its own directory (`pip install --target DIR`;
the venv's own build is `venv`). Every repeat runs each build in a fresh child process, the
builds interleaved so that machine noise hits them alike; medians are compared with the
first build named (a ratio).

    .venv/bin/python bench/llama_build.py --build avx512=venv --build avx2=/tmp/llama-avx2/site
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from inference.server.selfcheck import cpu_summary

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

CHILD = r"""
import json, sys, time
import llama_cpp
sys.path.insert(0, sys.argv[1])
from inference.engines.llama.native import bundled_gguf

threads, prompt_tokens, decode_tokens = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(str(bundled_gguf()), n_ctx=2048, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
words = ("the quick brown fox jumps over a lazy dog near the river bank " * 64).encode()
prompt = llm.tokenize(words)[:prompt_tokens]
llm.reset()
t0 = time.perf_counter(); llm.eval(prompt); prefill = time.perf_counter() - t0
token = int(llm.sample(temp=0.0))
t0 = time.perf_counter()
for _ in range(decode_tokens):
    llm.eval([token]); token = int(llm.sample(temp=0.0))
decode = time.perf_counter() - t0
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prefill_tok_s": len(prompt) / prefill, "decode_tok_s": decode_tokens / decode,
                  "features": info}))
"""


def _run(site: str, threads: int, prompt: int, decode: int) -> dict[str, float | str]:
    env = dict(os.environ)
    if site != "venv":
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(threads), str(prompt), str(decode)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    """Measure every build, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) - 1))
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--decode-tokens", type=int, default=128)
    args = parser.parse_args()
    builds = dict(item.split("=", 1) for item in args.build)
    samples: dict[str, list[dict[str, float | str]]] = {name: [] for name in builds}
    for _ in range(args.repeats):
        for name, site in builds.items():
            samples[name].append(_run(site, args.threads, args.prompt_tokens, args.decode_tokens))
    first = next(iter(builds))
    medians = {
        name: {
            key: statistics.median(float(s[key]) for s in runs)
            for key in ("prefill_tok_s", "decode_tok_s")
        }
        for name, runs in samples.items()
    }
    cpu = cpu_summary()
    print(f"bundled SmolLM2-135M Q4_1, {args.threads} thread(s), {os.cpu_count()} cores, {cpu}")
    print(f"medians of {args.repeats} interleaved runs; ratios against {first}\n")
    print(f"{'build':<10} {'prefill tok/s':>14} {'ratio':>6} {'decode tok/s':>13} {'ratio':>6}")
    for name, m in medians.items():
        base = medians[first]
        prefill, decode = m["prefill_tok_s"], m["decode_tok_s"]
        print(
            f"{name:<10} {prefill:>14.1f} {prefill / base['prefill_tok_s']:>6.2f}"
            f" {decode:>13.1f} {decode / base['decode_tok_s']:>6.2f}"
        )
    for name, runs in samples.items():
        print(f"  {name}: {runs[0]['features']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"llama_build_{int(time.time())}.json"
    out.write_text(json.dumps({"args": vars(args), "medians": medians, "samples": samples}))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
