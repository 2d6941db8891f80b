"""The hashing stand-in embedder (the real model is tested in tests/inference/test_embedder.py)."""

from __future__ import annotations

import numpy as np

from memory.embedder import HashingEmbedder


def test_hashing_embedder_is_deterministic_and_word_based() -> None:
    fake = HashingEmbedder(dimension=64)
    a, b, c, empty = fake.embed(["red apple pie", "Red apple!", "blue ocean", ""])
    assert np.allclose(fake.embed(["red apple pie"])[0], a)
    assert a @ b > a @ c
    assert np.isclose(np.linalg.norm(empty), 1.0)
