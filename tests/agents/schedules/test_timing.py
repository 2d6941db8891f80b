"""Fire times: cron in a time zone (DST as Debian cron), intervals from an anchor, and the
sorting of due fire times into on time, missed and next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.schedules.timing import BadSchedule, When, check, due

T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def cron(expr: str, zone: str = "UTC") -> When:
    return When(expr, zone, None, T0)


def every(seconds: int, anchor: datetime = T0) -> When:
    return When(None, "UTC", seconds, anchor)


def test_an_interval_counts_from_its_anchor() -> None:
    when = every(10)
    assert when.after(T0) == T0 + timedelta(seconds=10)
    assert when.after(T0 + timedelta(seconds=9.5)) == T0 + timedelta(seconds=10)
    assert when.after(T0 + timedelta(seconds=10)) == T0 + timedelta(seconds=20)
    assert when.after(T0 - timedelta(hours=1)) == T0  # a future anchor is the first fire
    assert when.at_or_before(T0 + timedelta(seconds=25)) == T0 + timedelta(seconds=20)
    assert when.at_or_before(T0 - timedelta(seconds=1)) is None


def test_cron_is_read_in_its_time_zone() -> None:
    when = cron("0 9 * * *", "America/New_York")
    assert when.after(T0) == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # 09:00 EST
    summer = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert when.after(summer) == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert when.at_or_before(datetime(2026, 12, 7, 14, 0, tzinfo=UTC)) == datetime(
        2026, 12, 7, 14, 0, tzinfo=UTC
    )


def test_a_local_time_that_dst_skips_fires_once_that_day() -> None:
    when = cron("30 2 * * *", "Europe/Berlin")  # 02:30 does not exist on 2026-03-29
    first = when.after(datetime(2026, 3, 28, 23, 0, tzinfo=UTC))
    second = when.after(first)
    assert first.date() == datetime(2026, 3, 29).date()
    assert second - first > timedelta(hours=20)


def test_due_fires_each_on_time_fire_and_knows_the_next() -> None:
    owed = due(every(2), T0 + timedelta(seconds=2), T0 + timedelta(seconds=7), grace_s=60)
    assert owed.on_time == tuple(T0 + timedelta(seconds=s) for s in (2, 4, 6))
    assert owed.latest_missed is None
    assert owed.following == T0 + timedelta(seconds=8)


def test_due_sorts_fires_later_than_the_grace_into_missed() -> None:
    now = T0 + timedelta(hours=3, minutes=5)
    owed = due(cron("0 * * * *"), T0 + timedelta(hours=1), now, grace_s=60)
    assert owed.on_time == ()
    assert owed.latest_missed == T0 + timedelta(hours=3)
    assert owed.following == T0 + timedelta(hours=4)
    # With a longer grace, the latest is on time and only the earlier ones were missed.
    late = due(cron("0 * * * *"), T0 + timedelta(hours=1), now, grace_s=600)
    assert late.on_time == (T0 + timedelta(hours=3),)
    assert late.latest_missed == T0 + timedelta(hours=2)


def test_due_skips_a_long_outage_of_a_short_interval_without_walking_it() -> None:
    now = T0 + timedelta(days=30)
    owed = due(every(1), T0 + timedelta(seconds=1), now, grace_s=5)
    assert owed.latest_missed == now - timedelta(seconds=5)
    assert len(owed.on_time) == 5
    assert owed.following == now + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("when", "field"),
    [
        (cron("61 * * * *"), "cron"),
        (cron("* * * *"), "cron"),
        (cron("0 0 * * * *"), "cron"),
        (cron("0 9 * * *", "Mars/Olympus"), "timezone"),
        (When(None, "UTC", None, T0), "cron"),
    ],
)
def test_unusable_timings_are_refused_naming_the_field(when: When, field: str) -> None:
    with pytest.raises(BadSchedule) as caught:
        check(when)
    assert caught.value.field == field
