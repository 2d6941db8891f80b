#!/usr/bin/env python3
"""Print the CMAKE_ARGS that build llama-cpp-python for this machine, portably.

llama.cpp's default build (`GGML_NATIVE=ON`) compiles for whatever the build machine has,
including the AMX matmul path that crashes in `llama_decode` on some Xeons; a wheel built so
also crashes (SIGILL) on an older CPU it is copied to. This script names the instruction sets
explicitly instead and never enables AMX. Standard library only: it runs before the install.

    python3 scripts/llama_cmake_args.py [auto|avx512|avx2|avx|generic|native]

auto      the highest of the levels below that this CPU supports (what `make` uses)
avx512    AVX-512 F/CD/VL/DQ/BW (+ VBMI, VNNI, BF16 when present), on top of avx2
avx2      AVX2, FMA, F16C, BMI2 (x86-64-v3: Haswell, Zen 1 and later; the Docker image's level)
avx       AVX and SSE 4.2 only
generic   no x86 extension (any x86-64 CPU; slow)
native    GGML_NATIVE=ON: every extension of the build machine, AMX included. Opt-in only;
          the result runs only on CPUs like the one that built it
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

LEVELS = ("avx512", "avx2", "avx", "generic")
COMMON = [
    "-DLLAVA_BUILD=OFF",  # the multimodal library: agentmill never loads it
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
]
AVX2_FLAGS = {"avx", "avx2", "fma", "f16c", "bmi2"}
AVX512_FLAGS = {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}


def cpu_flags() -> set[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def detect(flags: set[str]) -> str:
    """The highest level whose extensions `flags` all has."""
    if flags >= AVX2_FLAGS and flags >= AVX512_FLAGS:
        return "avx512"
    if flags >= AVX2_FLAGS:
        return "avx2"
    if {"avx", "sse4_2"} <= flags:
        return "avx"
    return "generic"


def cmake_args(level: str, flags: set[str]) -> list[str]:
    """The -D options for `level`; the optional AVX-512 extensions follow `flags`."""
    if level == "native":
        return ["-DGGML_NATIVE=ON", "-DLLAVA_BUILD=OFF"]
    on = {
        "avx512": ["SSE42", "AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX512"],
        "avx2": ["SSE42", "AVX", "AVX2", "FMA", "F16C", "BMI2"],
        "avx": ["SSE42", "AVX"],
        "generic": [],
    }[level]
    if level == "avx512":
        extras = {"AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni"}
        extras["AVX512_BF16"] = "avx512_bf16"
        on += [name for name, flag in extras.items() if flag in flags]
    every = ["SSE42", "AVX", "AVX_VNNI", "AVX2", "FMA", "F16C", "BMI2", "AVX512"]
    every += ["AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"]
    args = ["-DGGML_NATIVE=OFF"] + [f"-DGGML_{n}={'ON' if n in on else 'OFF'}" for n in every]
    return args + COMMON


def main(argv: list[str]) -> int:
    """Print the arguments for the level named in argv (default auto)."""
    wanted = argv[1] if len(argv) > 1 else "auto"
    if wanted not in ("auto", "native", *LEVELS):
        print(
            f"unknown level {wanted!r}: use auto, native or one of {', '.join(LEVELS)}",
            file=sys.stderr,
        )
        return 2
    if platform.machine() not in ("x86_64", "AMD64") and wanted != "native":
        print("-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF")  # ARM and others: the compiler's baseline
        return 0
    flags = cpu_flags()
    level = detect(flags) if wanted == "auto" else wanted
    print(" ".join(cmake_args(level, flags)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
