"""The real embedder: the bundled all-MiniLM-L6-v2 through sentence-transformers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.config import Settings
from inference.embedder import (
    BUNDLED_MODEL_NAME,
    SINGLE_THREAD_TEXTS,
    SentenceTransformerEmbedder,
    bundled_model_path,
    configured_embedder,
    model_identity,
)


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


def _threads_of_each_encode(model: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record torch's intra-op thread count at each `model.encode` call."""
    import torch

    seen: list[int] = []
    encode = model.encode

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return encode(*args, **kwargs)

    monkeypatch.setattr(model, "encode", recording)
    return seen


def test_short_calls_and_queries_run_on_one_thread_and_the_callers_setting_is_kept(
    embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    full = _threads_of_each_encode(embedder._model(), monkeypatch)
    fast = _threads_of_each_encode(embedder._query_model(), monkeypatch)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = embedder.embed(["When did Melanie paint a sunrise?"])
        batch = embedder.embed([f"turn {i}" for i in range(SINGLE_THREAD_TEXTS + 1)])
        query = embedder.embed_query("When did Melanie paint a sunrise?")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert full == [1, 2]
    assert fast == [1]  # the query went through the int8 copy, on one thread
    assert one.shape == (1, 384)
    assert batch.shape == (SINGLE_THREAD_TEXTS + 1, 384)
    assert query.shape == (384,)


def test_the_identity_is_the_model_directory_not_its_place(tmp_path: Path) -> None:
    bundled = model_identity(bundled_model_path())
    assert bundled.startswith(f"{BUNDLED_MODEL_NAME}@")
    copy = shutil.copytree(bundled_model_path(), tmp_path / "minilm-copy")
    assert model_identity(copy) == f"minilm-copy@{bundled.split('@')[1]}"
    (copy / "README.md").write_text("notes")  # documentation does not make another model
    assert model_identity(copy) == f"minilm-copy@{bundled.split('@')[1]}"
    (copy / "config_sentence_transformers.json").write_text("{}")
    assert model_identity(copy).split("@")[1] != bundled.split("@")[1]


def test_every_process_builds_the_configured_model(tmp_path: Path) -> None:
    assert configured_embedder(Settings(home=tmp_path)).model_path == bundled_model_path()
    copy = shutil.copytree(bundled_model_path(), tmp_path / "other")
    chosen = configured_embedder(Settings(home=tmp_path, embedding_model=copy))
    assert chosen.model_path == copy
    assert chosen.identity == model_identity(copy)


MEMORIES = [
    "Caroline went to an LGBTQ support group on Tuesday.",
    "Melanie painted a sunrise over the lake last year.",
    "I'm training for a marathon in the autumn.",
    "Our dog Luna chewed the new sofa.",
    "The tax office sent another letter about the refund.",
]
QUESTIONS = [
    "When did Caroline go to the support group?",
    "What did Melanie paint?",
    "What race is the speaker training for?",
    "What did the dog damage?",
    "Who wrote to them about money?",
]


def test_a_query_vector_is_int8_close_and_finds_what_the_full_model_finds(
    embedder: SentenceTransformerEmbedder,
) -> None:
    before = embedder.embed(MEMORIES)
    full = embedder.embed(QUESTIONS)
    fast = np.vstack([embedder.embed_query(q) for q in QUESTIONS])
    assert fast.shape == (len(QUESTIONS), 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(fast, full, atol=1e-3)  # the int8 copy answered, not the model
    assert np.all(np.sum(fast * full, axis=1) > 0.95)
    assert list(np.argmax(fast @ before.T, axis=1)) == list(np.argmax(full @ before.T, axis=1))
    # Building the int8 copy left the model itself as it was: memories embed as before.
    assert np.array_equal(embedder.embed(MEMORIES), before)


def test_the_int8_copy_shares_the_models_tables_and_owns_its_linear_layers(
    embedder: SentenceTransformerEmbedder,
) -> None:
    import torch

    embedder.embed_query("warm")
    model, fast = embedder._model(), embedder._query_model()
    assert fast is not model
    ours = {id(p) for p in model.parameters()}
    shared = [p for p in fast.parameters() if id(p) in ours]
    assert sum(p.numel() for p in shared) > 10_000_000  # the embedding tables, not copied
    assert not [m for m in fast.modules() if type(m) is torch.nn.Linear]  # all int8 now
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_without_int8_queries_a_query_is_embedded_by_the_model_itself(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, embedding_int8_queries=False)
    plain = configured_embedder(settings)
    assert not plain.int8_queries
    assert configured_embedder(Settings(home=tmp_path)).int8_queries
    query = QUESTIONS[0]
    assert np.allclose(plain.embed_query(query), plain.embed([query])[0], atol=1e-6)
