"""`agentmill schedules create|list|show|pause|resume|delete|runs`: a tenant's schedules
through the SDK. A schedule is named on the command line by its id; an agent by its name or
its id."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import datetime
from typing import TextIO

import agentmill

from cli import client as cli_client
from core.config import Settings
from core.errors import UserError


def schedule_id(ref: str) -> uuid.UUID:
    """The schedule id `ref`; `UserError` if it is not one."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        raise UserError(f"{ref!r} is not a schedule id (`agentmill schedules list`)") from None


def _at(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def timing(schedule: agentmill.Schedule) -> str:
    """When it fires: `cron '0 9 * * 1-5' Europe/Paris` or `every 3600s`."""
    if schedule.cron is not None:
        return f"cron {schedule.cron!r} {schedule.timezone}"
    return f"every {schedule.interval_s}s"


def line(schedule: agentmill.Schedule) -> str:
    """One line for a listing."""
    when = f"next {_at(schedule.next_fire_at)}" if schedule.next_fire_at else "paused"
    failing = f", paused itself: {schedule.last_error}" if schedule.last_error else ""
    return f"{schedule.id}  {timing(schedule)}  {when}  {schedule.fires} fires{failing}"


def details(schedule: agentmill.Schedule) -> str:
    """A schedule with what each fire runs."""
    out = [line(schedule), f"  agent: {schedule.agent_id}", f"  input: {schedule.input}"]
    if schedule.user_id is not None:
        out.append(f"  user: {schedule.user_id}")
    fixed = f" ({schedule.session_id})" if schedule.session_id is not None else ""
    out.append(f"  session: {schedule.session_mode}{fixed}; missed fires: {schedule.missed}")
    if schedule.last_fire_at is not None:
        out.append(f"  last fire: {_at(schedule.last_fire_at)}")
    if schedule.description:
        out.append(f"  description: {schedule.description}")
    return "\n".join(out) + "\n"


def fire_line(fire: agentmill.ScheduleFire) -> str:
    """One fire and the run it made."""
    late = " (late)" if fire.late else ""
    run = f"{fire.run.id} {fire.run.status}" if fire.run else "run deleted"
    return f"{_at(fire.fire_at)}{late}  {run}"


def create(client: agentmill.Client, args: argparse.Namespace) -> agentmill.Schedule:
    """The schedule `schedules create` asks for."""
    if (args.cron is None) == (args.interval is None):
        raise UserError("give one of --cron EXPRESSION or --interval SECONDS")
    agent = cli_client.find_agent(client, args.agent)
    return client.schedules.create(
        agent.id,
        args.input,
        cron=args.cron,
        timezone=args.timezone,
        interval_s=args.interval,
        user_id=args.user,
        session_mode=args.session_mode,
        missed=args.missed,
        enabled=not args.paused,
        description=args.description,
    )


def main(args: argparse.Namespace, settings: Settings, stdout: TextIO | None = None) -> int:
    """Dispatch `agentmill schedules ACTION`."""
    out = stdout or sys.stdout
    with cli_client.connected(cli_client.target(args, settings)) as client:
        action = args.schedules_command
        if action == "create":
            out.write(line(create(client, args)) + "\n")
        elif action == "list":
            agent_id = cli_client.find_agent(client, args.agent).id if args.agent else None
            for schedule in client.schedules.list(agent_id=agent_id, limit=100):
                out.write(line(schedule) + "\n")
        elif action == "show":
            out.write(details(client.schedules.get(schedule_id(args.schedule))))
        elif action == "pause":
            out.write(line(client.schedules.pause(schedule_id(args.schedule))) + "\n")
        elif action == "resume":
            out.write(line(client.schedules.resume(schedule_id(args.schedule))) + "\n")
        elif action == "runs":
            for fire in client.schedules.runs(schedule_id(args.schedule), limit=args.limit).data:
                out.write(fire_line(fire) + "\n")
        else:
            found = schedule_id(args.schedule)
            client.schedules.delete(found)
            out.write(f"deleted {found}\n")
    return 0
