"""When a schedule fires: a 5-field cron expression read in an IANA time zone (DST as Debian
cron does it, by `cronsim`), or every `interval_s` seconds counted from an anchor.

`due` sorts the fire times up to now into those still on time (at most `grace_s` late: each
gets its run) and those missed (later than that: the schedule's `missed` policy decides), and
gives the next fire time after now. Fire times are whole seconds, so the same fire computed by
two workers is the same key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MAX_ON_TIME = 1000
"""Most on-time fires handed back by one `due` (a one-second interval with a long grace)."""


class BadSchedule(ValueError):
    """A cron expression, time zone or interval that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class When:
    """A cron expression in a time zone, or an interval from an anchor."""

    cron: str | None
    timezone: str
    interval_s: int | None
    anchor_at: datetime

    def zone(self) -> ZoneInfo:
        """The time zone (checked by `check`)."""
        return ZoneInfo(self.timezone)

    def after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`."""
        if self.interval_s is not None:
            elapsed = (moment - self.anchor_at).total_seconds()
            count = max(0, math.floor(elapsed / self.interval_s) + 1)
            return self.anchor_at + timedelta(seconds=count * self.interval_s)
        assert self.cron is not None
        local = moment.astimezone(self.zone())
        return next(CronSim(self.cron, local)).astimezone(UTC)

    def at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before `moment` (None before the first)."""
        if self.interval_s is not None:
            elapsed = (moment - self.anchor_at).total_seconds()
            if elapsed < 0:
                return None
            return self.anchor_at + timedelta(
                seconds=(elapsed // self.interval_s) * self.interval_s
            )
        assert self.cron is not None
        local = (moment + timedelta(seconds=1)).astimezone(self.zone())
        return next(CronSim(self.cron, local.replace(microsecond=0), reverse=True)).astimezone(UTC)


def check(when: When) -> None:
    """BadSchedule unless the expression, zone and interval can be used."""
    if (when.cron is None) == (when.interval_s is None):
        raise BadSchedule("cron", "give exactly one of cron and interval_s")
    try:
        zone = ZoneInfo(when.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSchedule("timezone", f"unknown time zone {when.timezone!r}") from None
    if when.cron is not None:
        if len(when.cron.split()) != 5:
            raise BadSchedule("cron", "a cron expression has 5 fields: minute hour day month dow")
        try:
            next(CronSim(when.cron, datetime.now(zone)))
        except (CronSimError, StopIteration) as exc:
            raise BadSchedule("cron", f"bad cron expression: {exc}") from None


@dataclass(frozen=True)
class Due:
    """What a schedule owes at one moment."""

    on_time: tuple[datetime, ...]
    """Due fire times at most the grace late, oldest first: each becomes a run."""
    latest_missed: datetime | None
    """The latest fire time later than the grace, if any were missed."""
    following: datetime
    """The next fire time after now."""


def due(when: When, next_fire_at: datetime, now: datetime, grace_s: float) -> Due:
    """The fire times from `next_fire_at` up to `now`, sorted by lateness."""
    cutoff = now - timedelta(seconds=grace_s)
    latest_missed = None
    start = next_fire_at
    if next_fire_at < cutoff:
        latest_missed = when.at_or_before(cutoff)
        if latest_missed is not None and latest_missed < next_fire_at:
            latest_missed = None
        start = when.after(cutoff) if latest_missed is not None else next_fire_at
    on_time: list[datetime] = []
    moment = start
    while moment <= now and len(on_time) < MAX_ON_TIME:
        on_time.append(moment)
        moment = when.after(moment)
    following = moment if moment > now else when.after(now)
    return Due(tuple(on_time), latest_missed, following)


def first_fire(when: When, now: datetime) -> datetime:
    """The first fire time of a new or resumed schedule: the next one after now."""
    return when.after(now)


def whole_seconds(moment: datetime) -> datetime:
    """`moment` without its fraction of a second (fire times and anchors are whole seconds)."""
    return moment.replace(microsecond=0)
