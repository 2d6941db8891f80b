"""Neighbour windows."""

from __future__ import annotations

from memory.windows import Window, match_window, windows


def test_windows_use_stored_turns_before_and_batch_turns_after() -> None:
    out = windows(["s1", "s2", "s3"], ["a", "b", "c"])
    assert out[0] == Window(before=("s2", "s3"), after=("b", "c"))
    assert out[1] == Window(before=("s3", "a"), after=("c",))
    assert out[2] == Window(before=("a", "b"), after=())
    assert out[1].neighbours == ("s3", "a", "c")


def test_a_lone_turn_has_no_neighbours() -> None:
    (only,) = windows([], ["hello"])
    assert only.neighbours == ()


def test_a_stored_context_is_matched_to_the_neighbours_it_was_joined_from() -> None:
    before, after = ["one", "two"], ["four", "five"]
    assert match_window("one\ntwo\nfour\nfive", before, after) == (2, 2)
    assert match_window("one\ntwo\nfour", before, after) == (2, 1)  # written before "five"
    assert match_window("two", ["two"], []) == (1, 0)
    assert match_window("a caller's note", before, after) is None
    assert match_window("one\nfour", before, after) is None  # "two" changed since
