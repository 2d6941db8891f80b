"""Neighbour windows."""

from __future__ import annotations

from memory.windows import Window, windows


def test_windows_use_stored_turns_before_and_batch_turns_after() -> None:
    out = windows(["s1", "s2", "s3"], ["a", "b", "c"])
    assert out[0] == Window(before=("s2", "s3"), after=("b", "c"))
    assert out[1] == Window(before=("s3", "a"), after=("c",))
    assert out[2] == Window(before=("a", "b"), after=())
    assert out[1].neighbours == ("s3", "a", "c")


def test_a_lone_turn_has_no_neighbours() -> None:
    (only,) = windows([], ["hello"])
    assert only.neighbours == ()
