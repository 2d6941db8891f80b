"""The start-up check: an engine must decode a few tokens before its server says it is ready.

A llama.cpp build that does not fit the CPU dies in native code (SIGSEGV in `llama_decode` on
AMX Xeons with a `GGML_NATIVE=ON` build, SIGILL on a CPU older than the build's), which no
Python handler can catch. So the llama engine is first tried in a child process
(`python -m inference.server.selfcheck`); a child that dies by a signal becomes one clear line
naming the engine, the CPU and the fix. The engine the server keeps then decodes again in-process
(warm-up), so a Python-level failure is reported the same way.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

from core.config import Settings, load_settings
from inference.engines.base import Engine, Finished, GenerationRequest, SamplingParams, TextDelta
from inference.errors import EngineCheckFailed

PROBE_PROMPT = "Once upon a time"
PROBE_TOKENS = 4
CHILD_TIMEOUT_S = 180.0
FIX = (
    "rebuild llama-cpp-python for this CPU with explicit flags: `make clean install` (or "
    "`make install LLAMA_CPU=avx2` for the most portable build; docs/inference.md, CPU builds)"
)
_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_summary() -> str:
    """The CPU's model name and the instruction sets that decide which llama.cpp build works."""
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name in ("", platform.machine()):
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    present = [f for f in _CPU_FLAGS if f in flags] or ["none of " + "/".join(_CPU_FLAGS)]
    return f"{name} ({' '.join(present)})"


def llama_build_features() -> str:
    """The CPU features this llama.cpp build uses (from llama.cpp's own system info)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    parts = [part.rsplit(":", 1)[-1] for part in info.split("|")]  # "CPU : SSE3 = 1 | AVX = 1"
    on = [part.split("=")[0].strip() for part in parts if part.strip().endswith("= 1")]
    return " ".join(on) or info.strip()


async def decode_probe(engine: Engine) -> int:
    """Generate up to PROBE_TOKENS greedy tokens; the number generated (at least one)."""
    request = GenerationRequest(
        PROBE_PROMPT, SamplingParams(temperature=0.0, max_tokens=PROBE_TOKENS)
    )
    tokens, text = 0, ""
    async for event in engine.generate(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Finished):
            tokens = event.completion_tokens
    if tokens == 0 and not text:
        raise EngineCheckFailed(f"the {engine.model_id} engine generated nothing")
    return max(tokens, 1)


def warm_up(engine: Engine, engine_name: str) -> int:
    """Decode in this process (the engine the server will keep); raise EngineCheckFailed."""
    try:
        return asyncio.run(decode_probe(engine))
    except EngineCheckFailed:
        raise
    except Exception as exc:
        raise EngineCheckFailed(
            f"the {engine_name} engine failed its start-up decode ({type(exc).__name__}: "
            f"{exc}) on {cpu_summary()}"
        ) from exc


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def check_in_child(settings: Settings) -> None:
    """Load the llama engine and decode in a child process; raise EngineCheckFailed with a
    one-line diagnosis when the child crashes, fails or hangs."""
    env = {**os.environ, **_settings_env(settings)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "inference.server.selfcheck"],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EngineCheckFailed(
            f"the llama.cpp engine did not decode {PROBE_TOKENS} tokens in "
            f"{CHILD_TIMEOUT_S:.0f}s on {cpu_summary()}"
        ) from None
    if done.returncode == 0:
        return
    last = (done.stderr.strip().splitlines() or [""])[-1][:300]
    detail = f": {last}" if last and done.returncode > 0 else ""
    try:
        features = llama_build_features()
    except Exception:  # the build may not even load here
        features = "unknown"
    raise EngineCheckFailed(
        f"the llama.cpp engine {_describe_exit(done.returncode)} at its start-up decode"
        f"{detail}; CPU: {cpu_summary()}; llama.cpp build uses: {features}; fix: {FIX}"
    )


def _settings_env(settings: Settings) -> dict[str, str]:
    """What the child needs to build the same engine as this process (flags included)."""
    env: dict[str, str] = {"AGENTMILL_INFERENCE_ENGINE": settings.inference_engine}
    if settings.inference_model is not None:
        env["AGENTMILL_INFERENCE_MODEL"] = str(settings.inference_model)
    if settings.inference_threads is not None:
        env["AGENTMILL_INFERENCE_THREADS"] = str(settings.inference_threads)
    return env


def _child_main() -> int:
    from inference.server.main import build_engine

    settings = load_settings().model_copy(
        update={"inference_slots": 1, "inference_context": 512, "inference_max_waiting": 1}
    )
    engine = build_engine(settings)
    try:
        tokens = asyncio.run(decode_probe(engine))
    finally:
        engine.close()
    print(f"ok: {tokens} tokens", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
