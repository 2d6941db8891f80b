"""The embedding model behind /v1/embeddings: the configured sentence-transformers model
(AGENTMILL_EMBEDDING_MODEL, default the bundled all-MiniLM-L6-v2), with the same loader the
memory layer uses, so vectors from the API and from memory agree."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from core.config import Settings
from inference.embedder import SentenceTransformerEmbedder, configured_model_path

BUNDLED_EMBEDDING_ID = "all-minilm-l6-v2"


class SentenceEmbeddings:
    """`EmbeddingModel` over a sentence-transformers model directory."""

    def __init__(self, model_path: Path, model_id: str) -> None:
        self.model_id = model_id
        self._path = model_path
        self._embedder = SentenceTransformerEmbedder(model_path)

    @classmethod
    def configured(cls, settings: Settings) -> SentenceEmbeddings:
        """The settings' model, served as its directory's name (the bundled one as
        `all-minilm-l6-v2`)."""
        path = configured_model_path(settings)
        model_id = BUNDLED_EMBEDDING_ID if settings.embedding_model is None else path.name
        return cls(path, model_id)

    @cached_property
    def dimensions(self) -> int:
        """Vector length (384 for the bundled model)."""
        return self._embedder.dimension

    @cached_property
    def _tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self._path), local_files_only=True)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors, one per text, as plain lists."""
        vectors: list[list[float]] = self._embedder.embed(texts).tolist()
        return vectors

    def count_tokens(self, texts: list[str]) -> int:
        """Word-piece tokens in all texts (what the model reads, before truncation)."""
        return sum(len(ids) for ids in self._tokenizer(texts)["input_ids"])
