"""The outage policy (pure): what is transient, the backoff, and the budget."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DataError, OperationalError

from agents.runs.retry import (
    DATABASE_UNAVAILABLE,
    Backoff,
    Outage,
    OutageOutlasted,
    outage_of,
    retry_outages,
)
from inference.client.model_client import ModelRejected, ModelUnavailable


class FakeTime:
    """A clock that pauses advance."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def pause(self, seconds: float, outage: Outage, failures: int) -> None:
        assert failures == len(self.pauses) + 1
        self.pauses.append(seconds)
        self.now += seconds


def lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def test_transient_failures_are_outages_and_others_are_not() -> None:
    model = outage_of(ModelUnavailable("unreachable"))
    assert model == Outage("model", "unreachable", "the model server could not be reached")
    database = outage_of(lost_connection())
    assert database == Outage("database", "connection_lost", DATABASE_UNAVAILABLE)
    assert outage_of(ModelRejected("bad_request")) is None
    assert outage_of(DataError("SELECT", {}, Exception("invalid input"))) is None
    assert outage_of(ValueError("a bug")) is None


def test_backoff_doubles_up_to_its_cap_with_jitter_within_half() -> None:
    backoff = Backoff(budget_s=60, first_s=0.5, max_s=8)
    assert [backoff.delay(n, 0.999999) for n in (1, 2, 3, 4, 5, 6)] == pytest.approx(
        [0.5, 1, 2, 4, 8, 8], rel=1e-5
    )
    assert [backoff.delay(n, 0.0) for n in (1, 2, 6)] == [0.25, 0.5, 4.0]


def test_a_transient_failure_is_retried_until_it_succeeds() -> None:
    time = FakeTime()
    failures = [ModelUnavailable("timeout"), ModelUnavailable("server_error")]

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "answer"

    result = retry_outages(
        call, {"model": Backoff(60)}, time.pause, clock=lambda: time.now, jitter=lambda: 0.5
    )
    assert result == "answer"
    assert time.pauses == [0.375, 0.75]


def test_a_streak_past_its_budget_gives_up_and_the_last_pause_fits_the_budget() -> None:
    time = FakeTime()

    def never() -> None:
        raise lost_connection()

    with pytest.raises(OutageOutlasted) as caught:
        retry_outages(
            never,
            {"database": Backoff(10, first_s=1, max_s=4)},
            time.pause,
            clock=lambda: time.now,
            jitter=lambda: 0.999999,
        )
    assert sum(time.pauses) == pytest.approx(10)
    assert time.pauses[-1] < 4  # cut to what was left of the budget
    assert caught.value.outage.kind == "database"
    assert caught.value.waited_s == pytest.approx(10)
    assert isinstance(caught.value.__cause__, OperationalError)
    assert "server closed" not in str(caught.value)  # the driver's text stays in the cause


def test_only_the_kinds_asked_for_are_retried() -> None:
    time = FakeTime()

    def down() -> None:
        raise ModelUnavailable("unreachable")

    with pytest.raises(ModelUnavailable):
        retry_outages(down, {"database": Backoff(60)}, time.pause, clock=lambda: time.now)
    assert time.pauses == []

    def rejected() -> None:
        raise ModelRejected("context_window")

    with pytest.raises(ModelRejected):
        retry_outages(rejected, {"model": Backoff(60)}, time.pause, clock=lambda: time.now)
    assert time.pauses == []


def test_a_zero_budget_never_waits() -> None:
    time = FakeTime()

    def down() -> None:
        raise ModelUnavailable("rate_limited")

    with pytest.raises(OutageOutlasted):
        retry_outages(down, {"model": Backoff(0)}, time.pause, clock=lambda: time.now)
    assert time.pauses == []
