"""The real embedder: the bundled all-MiniLM-L6-v2 through sentence-transformers."""

from __future__ import annotations

import numpy as np

from inference.embedder import SentenceTransformerEmbedder


def test_real_embedder_gives_unit_vectors_of_the_model_dimension(
    embedder: SentenceTransformerEmbedder,
) -> None:
    vectors = embedder.embed(["I adopted a puppy.", "We got a new dog.", "Tax rates rose."])
    assert embedder.dimension == 384
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder.embed([]).shape == (0, 384)


def test_batching_does_not_change_vectors(embedder: SentenceTransformerEmbedder) -> None:
    texts = [f"memory number {i}" for i in range(5)]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)
