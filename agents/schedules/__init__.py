"""Schedules: agents run on a cron expression or an interval (docs/schedules.md)."""
