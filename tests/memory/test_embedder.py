"""Embedders: the real model and the hashing stand-in."""

from __future__ import annotations

import numpy as np

from memory.embedder import HashingEmbedder, SentenceTransformerEmbedder


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


def test_hashing_embedder_is_deterministic_and_word_based() -> None:
    fake = HashingEmbedder(dimension=64)
    a, b, c, empty = fake.embed(["red apple pie", "Red apple!", "blue ocean", ""])
    assert np.allclose(fake.embed(["red apple pie"])[0], a)
    assert a @ b > a @ c
    assert np.isclose(np.linalg.norm(empty), 1.0)
