from __future__ import annotations

import pytest

from bench.memory_qa_score import exact_match, f1, normalise


def test_identical_answers_score_one() -> None:
    assert f1("7 May 2023", "7 May 2023") == 1.0
    assert exact_match("7 May 2023", "7 May 2023")


def test_disjoint_answers_score_zero() -> None:
    assert f1("Paris", "in the mountains") == 0.0
    assert not exact_match("Paris", "in the mountains")


def test_case_articles_and_punctuation_are_ignored() -> None:
    assert normalise("The  Painting, of a Sunset!") == "painting of sunset"
    assert f1("the painting of a sunset.", "Painting of sunset") == 1.0
    assert exact_match("An adoption agency.", "adoption agency")


def test_and_is_dropped_as_locomo_does() -> None:
    assert normalise("hiking and camping") == "hiking camping"


def test_articles_inside_words_are_kept() -> None:
    assert normalise("Theatre anthem") == "theatre anthem"


def test_partial_overlap() -> None:
    # prediction 3 tokens, gold 2, 1 shared: precision 1/3, recall 1/2, F1 0.4
    assert f1("she went camping", "camping trip") == pytest.approx(0.4)
    assert not exact_match("she went camping", "camping trip")


def test_repeated_tokens_count_once_per_occurrence() -> None:
    # prediction "yes yes", gold "yes": 1 shared, precision 1/2, recall 1, F1 2/3
    assert f1("yes yes", "yes") == pytest.approx(2 / 3)


def test_empty_answers_score_zero() -> None:
    assert f1("", "Paris") == 0.0
    assert f1("Paris", "") == 0.0
    assert f1("the", "a") == 0.0


def test_no_stemming() -> None:
    assert f1("running", "runs") == 0.0
