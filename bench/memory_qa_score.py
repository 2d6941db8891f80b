"""Scoring for the LoCoMo question-answering benchmark: LoCoMo's answer normalisation, token F1
and exact match.

Normalisation follows LoCoMo's `task_eval/evaluation.py`: lower-case, drop punctuation, drop
the words a, an, the and "and", collapse whitespace. Two simplifications, both deliberate:
no Porter stemming (LoCoMo stems with nltk, which is not among our pinned dependencies, so
"runs" and "running" count as different tokens here and F1 reads a little lower than
LoCoMo's script would give), and plain F1 for every category (LoCoMo's script scores
multi-hop answers part by part, split on commas, and keeps only the first of a
";"-separated open-domain gold answer).
"""

from __future__ import annotations

import re
import string
from collections import Counter

STEMMING = False
"""Whether tokens are stemmed (see the module docstring: no stemmer is installed)."""

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(answer: str) -> str:
    """LoCoMo's normal form: lower case, no punctuation, no a/an/the/and, single spaces."""
    text = answer.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def tokens(answer: str) -> list[str]:
    """The normalised answer's words."""
    return normalise(answer).split()


def f1(prediction: str, gold: str) -> float:
    """Token F1 between the normalised prediction and gold answer (0 when either is empty)."""
    predicted, expected = tokens(prediction), tokens(gold)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> bool:
    """The two answers are equal once normalised."""
    return normalise(prediction) == normalise(gold)
