"""The stream caps: per key and in all, refusals naming the cap, slots given back once."""

from __future__ import annotations

import pytest

from core.errors import TooManyRequests
from core.web.concurrency import RETRY_AFTER_S, ConcurrencyLimit


def test_a_key_past_its_cap_is_refused_and_others_are_not() -> None:
    limit = ConcurrencyLimit(per_key=2, total=10)
    held = [limit.acquire("a"), limit.acquire("a")]
    with pytest.raises(TooManyRequests, match="for this tenant") as refused:
        limit.acquire("a")
    assert refused.value.retry_after_s == RETRY_AFTER_S
    other = limit.acquire("b")
    assert (limit.open, limit.open_for("a"), limit.open_for("b")) == (3, 2, 1)
    held[0].release()
    limit.acquire("a")  # a place came back
    other.release()
    assert limit.open_for("b") == 0


def test_the_total_cap_holds_across_keys() -> None:
    limit = ConcurrencyLimit(per_key=5, total=3)
    slots = [limit.acquire(key) for key in ("a", "b", "c")]
    with pytest.raises(TooManyRequests, match="3 open streams, its most"):
        limit.acquire("d")
    slots[1].release()
    limit.acquire("d")


def test_a_slot_is_given_back_once_however_often_released() -> None:
    limit = ConcurrencyLimit(per_key=1, total=1)
    with limit.acquire("a") as slot:
        assert limit.open == 1
    slot.release()
    slot.release()
    assert limit.open == 0
    limit.acquire("a")
    with pytest.raises(TooManyRequests):
        limit.acquire("a")


def test_caps_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimit(per_key=0, total=1)
