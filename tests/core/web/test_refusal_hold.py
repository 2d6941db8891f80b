"""The hold before a 429: how long, what Retry-After is left, and the cap on refusals held."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from core.web.refusal_hold import RefusalHold


def test_a_refusal_waits_the_hold_and_the_wait_comes_off_retry_after() -> None:
    hold = RefusalHold(hold_s=2.0, max_held=10)
    started = time.monotonic()
    left = asyncio.run(hold.hold(5))
    waited = time.monotonic() - started
    assert 1.0 <= waited < 2.5  # between half and all of the hold
    assert left in (3, 4)  # ceil(5 - waited): never rounded down below what is left
    assert hold.held == 0


def test_the_hold_never_exceeds_retry_after_and_leaves_at_least_one_second() -> None:
    hold = RefusalHold(hold_s=30.0, max_held=10)
    started = time.monotonic()
    left = asyncio.run(hold.hold(1))
    waited = time.monotonic() - started
    assert 0.5 <= waited < 1.5  # half to all of the Retry-After, not of the 30 s hold
    assert left == 1


def test_past_max_held_refusals_are_answered_at_once() -> None:
    hold = RefusalHold(hold_s=0.5, max_held=2)

    async def scenario() -> list[float]:
        async def one() -> float:
            started = time.monotonic()
            await hold.hold(5)
            return time.monotonic() - started

        first = [asyncio.create_task(one()) for _ in range(2)]
        await asyncio.sleep(0.05)  # both held now
        assert hold.held == 2
        third = await one()
        return [third, *await asyncio.gather(*first)]

    third, *held = asyncio.run(scenario())
    assert third < 0.2
    assert all(waited >= 0.25 for waited in held)
    assert hold.held == 0


def test_a_zero_hold_answers_at_once() -> None:
    hold = RefusalHold(hold_s=0.0, max_held=10)
    started = time.monotonic()
    assert asyncio.run(hold.hold(5)) == 5
    assert time.monotonic() - started < 0.1


def test_holds_are_spread_so_a_crowd_refused_together_returns_apart() -> None:
    hold = RefusalHold(hold_s=0.4, max_held=100, rng=random.Random(7))  # noqa: S311

    async def crowd() -> list[float]:
        async def one() -> float:
            await hold.hold(5)
            return time.monotonic()

        return list(await asyncio.gather(*(one() for _ in range(20))))

    ends = sorted(asyncio.run(crowd()))
    assert ends[-1] - ends[0] >= 0.1  # spread over the half of the hold that is drawn


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        RefusalHold(hold_s=-1.0, max_held=1)
    with pytest.raises(ValueError, match="must not be negative"):
        RefusalHold(hold_s=1.0, max_held=-1)
