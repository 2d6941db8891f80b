"""Text -> unit vectors: the `Embedder` protocol memory is written against (`NamedEmbedder`
when it names its model), and `HashingEmbedder`, a deterministic stand-in for unit tests of
branching. The real embedder (sentence-transformers with the configured model, by default the
bundled all-MiniLM-L6-v2) lives with the other models, in `inference.embedder`; the processes
that run memory pass it in."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]
"""A (n, dimension) float32 array of L2-normalised rows."""
Vector = NDArray[np.float32]
"""A (dimension,) float32 unit vector."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, in order, as a (len(texts), dimension) array."""
        ...

    def embed_query(self, text: str) -> Vector:
        """A search query's unit vector, comparable with `embed`'s (the real embedder may
        compute it faster and a little less exactly: inference.embedder)."""
        ...


@runtime_checkable
class NamedEmbedder(Embedder, Protocol):
    """An embedder that names its model. The store checks the name against the model the
    database's vectors came from (memory.model_record); one that names none (`HashingEmbedder`,
    a benchmark's wrapper) is checked on its dimension only."""

    @property
    def identity(self) -> str:
        """`name@fingerprint` of the model (inference.embedder.model_identity)."""
        ...


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

    def embed_query(self, text: str) -> Vector:
        """The same vector as `embed` gives the text."""
        vector: Vector = self.embed([text])[0]
        return vector
