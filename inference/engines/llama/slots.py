"""Which cached sequence (slot) should serve a new prompt: the pure part of prefix reuse."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class SlotView:
    """What the chooser needs to know of a free slot."""

    index: int
    cached: Sequence[int]
    last_used: float


@dataclass(frozen=True)
class Placement:
    """The slot to use and how many of the prompt's tokens its cache already holds."""

    slot: int
    reused: int


def choose_slot(free: Sequence[SlotView], prompt: Sequence[int]) -> Placement:
    """The free slot sharing the longest prefix with `prompt`; ties go to the least recently
    used, so an unrelated prompt evicts the stalest cache rather than a warm conversation.

    At least one prompt token is always left to evaluate (the model needs logits for it).
    """
    if not free:
        raise ValueError("no free slot")
    best = max(free, key=lambda s: (common_prefix(s.cached, prompt), -s.last_used))
    reused = min(common_prefix(best.cached, prompt), len(prompt) - 1)
    return Placement(best.index, max(reused, 0))
