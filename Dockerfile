# The agentmill image: `agentmill api`, `inference`, `worker`, `migrate`, and the client commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /app
# llama-cpp-python builds from source.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.lock pyproject.toml README.md ./
COPY scripts/llama_cmake_args.py ./scripts/
# llama.cpp compiled for an explicit instruction-set level, never for the build machine: a
# GGML_NATIVE build crashes on CPUs unlike the builder's (SIGILL), and its AMX path segfaults
# on some Xeons. avx2 (x86-64-v3) runs on every x86 server CPU of the last decade; pass
# --build-arg LLAMA_CPU=avx512 for a faster image that needs AVX-512 (docs/inference.md).
ARG LLAMA_CPU=avx2
RUN CMAKE_ARGS="$(python scripts/llama_cmake_args.py "$LLAMA_CPU")" \
    pip install --no-binary llama-cpp-python -c requirements.lock \
    "$(grep -i '^llama.cpp.python==' requirements.lock)"
COPY core ./core
COPY agents ./agents
COPY memory ./memory
COPY inference ./inference
COPY api ./api
COPY cli ./cli
COPY sdk ./sdk
# Runtime dependencies only, at the exact versions of requirements.lock; the SDK too, for the
# client commands (`agentmill chat`, `agentmill batch`).
RUN pip install -c requirements.lock . ./sdk && useradd --create-home agentmill
USER agentmill

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"
CMD ["agentmill", "api", "--host", "0.0.0.0", "--port", "8000"]
