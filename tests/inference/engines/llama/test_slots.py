"""Choosing the slot whose cache holds the longest prefix of a prompt."""

from __future__ import annotations

import pytest

from inference.engines.llama.slots import SlotView, choose_slot, common_prefix


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2]) == 2


def test_longest_prefix_wins_and_one_token_is_left_to_evaluate() -> None:
    free = [SlotView(0, [9, 9], 1.0), SlotView(1, [1, 2, 3, 4], 5.0), SlotView(2, [1, 2], 0.0)]
    place = choose_slot(free, [1, 2, 3, 4])
    assert place.slot == 1
    assert place.reused == 3  # the last prompt token is evaluated again to get logits


def test_unrelated_prompt_takes_the_least_recently_used_slot() -> None:
    free = [SlotView(0, [5], 3.0), SlotView(1, [6], 1.0), SlotView(2, [7], 2.0)]
    assert choose_slot(free, [1, 2]).slot == 1


def test_no_free_slot() -> None:
    with pytest.raises(ValueError, match="no free slot"):
        choose_slot([], [1])
