"""The embedding model behind /v1/embeddings: the bundled all-MiniLM-L6-v2 (the same model and
loader the memory layer uses, so vectors from the API and from memory agree)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from inference.embedder import SentenceTransformerEmbedder, bundled_model_path

BUNDLED_EMBEDDING_ID = "all-minilm-l6-v2"


class BundledEmbeddings:
    """`EmbeddingModel` over the bundled sentence-transformers model."""

    def __init__(self, model_id: str = BUNDLED_EMBEDDING_ID) -> None:
        self.model_id = model_id
        self._embedder = SentenceTransformerEmbedder()

    @cached_property
    def dimensions(self) -> int:
        """Vector length (384)."""
        return self._embedder.dimension

    @cached_property
    def _tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(bundled_model_path()), local_files_only=True)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors, one per text, as plain lists."""
        vectors: list[list[float]] = self._embedder.embed(texts).tolist()
        return vectors

    def count_tokens(self, texts: list[str]) -> int:
        """Word-piece tokens in all texts (what the model reads, before truncation)."""
        return sum(len(ids) for ids in self._tokenizer(texts)["input_ids"])
