"""`client.schedules`: run an agent on a cron expression or an interval; create, list, get,
update (pause and resume), delete, and each schedule's fires with the runs they made."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.models import Page
from agentmill.schedule_models import Missed, Schedule, ScheduleFire, SessionMode

_UNSET: Any = object()


def _json(value: Any) -> Any:
    """A field's value as JSON: ids and times as text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def create_call(agent_id: uuid.UUID | str, input: str, fields: dict[str, Any]) -> Call:
    """POST /v1/schedules; a field given as None is left to the server's default."""
    body = {"agent_id": str(agent_id), "input": input}
    body.update({k: _json(v) for k, v in fields.items() if v is not None})
    return Call("POST", "/v1/schedules", json=body, headers=new_key())


def update_call(schedule_id: uuid.UUID | str, fields: dict[str, Any]) -> Call:
    """PATCH /v1/schedules/{id} with the fields given (None clears `user_id`, `session_id`)."""
    body = {k: _json(v) for k, v in fields.items() if v is not _UNSET}
    return Call("PATCH", f"/v1/schedules/{schedule_id}", json=body)


def enabled_call(schedule_id: uuid.UUID | str, enabled: bool) -> Call:
    """PATCH /v1/schedules/{id} `enabled`: safe to repeat (it sets a flag)."""
    body = {"enabled": enabled}
    return Call("PATCH", f"/v1/schedules/{schedule_id}", json=body, idempotent=True)


def page_call(
    path: str, limit: int, cursor: str | None, agent_id: uuid.UUID | str | None = None
) -> Call:
    """GET of one page of schedules or of a schedule's fires."""
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    if agent_id is not None:
        params["agent_id"] = str(agent_id)
    return Call("GET", path, params=params)


class Schedules:
    """The tenant's schedules."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: uuid.UUID | str,
        input: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        interval_s: int | None = None,
        start_at: datetime | None = None,
        user_id: str | None = None,
        session_mode: SessionMode = "new",
        session_id: uuid.UUID | str | None = None,
        metadata: dict[str, Any] | None = None,
        missed: Missed = "run_once",
        enabled: bool = True,
        description: str = "",
    ) -> Schedule:
        """Run the agent on `input` at each time of `cron` (read in `timezone`, default UTC)
        or every `interval_s` seconds from `start_at` (default: one interval from now): give
        exactly one. `session_mode="fixed"` runs every fire in `session_id` (default: a session
        made at the first fire). `UnprocessableEntityError` for a cron expression or time zone
        that cannot be used, `NotFoundError` for an agent the tenant does not have."""
        fields = {
            "cron": cron,
            "timezone": timezone,
            "interval_s": interval_s,
            "start_at": start_at,
            "user_id": user_id,
            "session_mode": session_mode,
            "session_id": session_id,
            "metadata": metadata,
            "missed": missed,
            "enabled": enabled,
            "description": description,
        }
        return Schedule.model_validate(self._http.send(create_call(agent_id, input, fields)).json())

    def get(self, schedule_id: uuid.UUID | str) -> Schedule:
        """One schedule, with its next fire time; `NotFoundError` if the tenant has none."""
        call = Call("GET", f"/v1/schedules/{schedule_id}")
        return Schedule.model_validate(self._http.send(call).json())

    def update(
        self,
        schedule_id: uuid.UUID | str,
        *,
        input: str = _UNSET,
        cron: str = _UNSET,
        timezone: str = _UNSET,
        interval_s: int = _UNSET,
        start_at: datetime = _UNSET,
        user_id: str | None = _UNSET,
        session_mode: SessionMode = _UNSET,
        session_id: uuid.UUID | str | None = _UNSET,
        metadata: dict[str, Any] = _UNSET,
        missed: Missed = _UNSET,
        enabled: bool = _UNSET,
        description: str = _UNSET,
    ) -> Schedule:
        """Change the fields given: `cron` replaces an interval and `interval_s` a cron
        expression; `user_id=None` and `session_id=None` clear them."""
        fields = {
            "input": input,
            "cron": cron,
            "timezone": timezone,
            "interval_s": interval_s,
            "start_at": start_at,
            "user_id": user_id,
            "session_mode": session_mode,
            "session_id": session_id,
            "metadata": metadata,
            "missed": missed,
            "enabled": enabled,
            "description": description,
        }
        return Schedule.model_validate(self._http.send(update_call(schedule_id, fields)).json())

    def pause(self, schedule_id: uuid.UUID | str) -> Schedule:
        """Stop firing (`next_fire_at` becomes None) until `resume`."""
        return Schedule.model_validate(self._http.send(enabled_call(schedule_id, False)).json())

    def resume(self, schedule_id: uuid.UUID | str) -> Schedule:
        """Fire again, from the next fire time after now (missed ones are not made up)."""
        return Schedule.model_validate(self._http.send(enabled_call(schedule_id, True)).json())

    def delete(self, schedule_id: uuid.UUID | str) -> None:
        """Delete a schedule; the runs it made stay."""
        self._http.send(Call("DELETE", f"/v1/schedules/{schedule_id}"))

    def page(
        self,
        *,
        agent_id: uuid.UUID | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Schedule]:
        """One page of schedules (`agent_id`'s only, if given), oldest first."""
        call = page_call("/v1/schedules", limit, cursor, agent_id)
        return Page[Schedule].model_validate(self._http.send(call).json())

    def list(
        self, *, agent_id: uuid.UUID | str | None = None, limit: int = 50
    ) -> Iterator[Schedule]:
        """Every schedule (`agent_id`'s only, if given), oldest first, fetched `limit` per
        request as iteration goes."""
        cursor: str | None = None
        while True:
            page = self.page(agent_id=agent_id, limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def runs(
        self, schedule_id: uuid.UUID | str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ScheduleFire]:
        """One page of the schedule's fires, newest first, each with the run it made."""
        call = page_call(f"/v1/schedules/{schedule_id}/runs", limit, cursor)
        return Page[ScheduleFire].model_validate(self._http.send(call).json())


class AsyncSchedules:
    """The tenant's schedules (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: uuid.UUID | str,
        input: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        interval_s: int | None = None,
        start_at: datetime | None = None,
        user_id: str | None = None,
        session_mode: SessionMode = "new",
        session_id: uuid.UUID | str | None = None,
        metadata: dict[str, Any] | None = None,
        missed: Missed = "run_once",
        enabled: bool = True,
        description: str = "",
    ) -> Schedule:
        """Run the agent on a cron expression or an interval (see `Schedules.create`)."""
        fields = {
            "cron": cron,
            "timezone": timezone,
            "interval_s": interval_s,
            "start_at": start_at,
            "user_id": user_id,
            "session_mode": session_mode,
            "session_id": session_id,
            "metadata": metadata,
            "missed": missed,
            "enabled": enabled,
            "description": description,
        }
        response = await self._http.send(create_call(agent_id, input, fields))
        return Schedule.model_validate(response.json())

    async def get(self, schedule_id: uuid.UUID | str) -> Schedule:
        """One schedule, with its next fire time."""
        response = await self._http.send(Call("GET", f"/v1/schedules/{schedule_id}"))
        return Schedule.model_validate(response.json())

    async def update(
        self,
        schedule_id: uuid.UUID | str,
        *,
        input: str = _UNSET,
        cron: str = _UNSET,
        timezone: str = _UNSET,
        interval_s: int = _UNSET,
        start_at: datetime = _UNSET,
        user_id: str | None = _UNSET,
        session_mode: SessionMode = _UNSET,
        session_id: uuid.UUID | str | None = _UNSET,
        metadata: dict[str, Any] = _UNSET,
        missed: Missed = _UNSET,
        enabled: bool = _UNSET,
        description: str = _UNSET,
    ) -> Schedule:
        """Change the fields given (see `Schedules.update`)."""
        fields = {
            "input": input,
            "cron": cron,
            "timezone": timezone,
            "interval_s": interval_s,
            "start_at": start_at,
            "user_id": user_id,
            "session_mode": session_mode,
            "session_id": session_id,
            "metadata": metadata,
            "missed": missed,
            "enabled": enabled,
            "description": description,
        }
        response = await self._http.send(update_call(schedule_id, fields))
        return Schedule.model_validate(response.json())

    async def pause(self, schedule_id: uuid.UUID | str) -> Schedule:
        """Stop firing until `resume`."""
        response = await self._http.send(enabled_call(schedule_id, False))
        return Schedule.model_validate(response.json())

    async def resume(self, schedule_id: uuid.UUID | str) -> Schedule:
        """Fire again, from the next fire time after now."""
        response = await self._http.send(enabled_call(schedule_id, True))
        return Schedule.model_validate(response.json())

    async def delete(self, schedule_id: uuid.UUID | str) -> None:
        """Delete a schedule; the runs it made stay."""
        await self._http.send(Call("DELETE", f"/v1/schedules/{schedule_id}"))

    async def page(
        self,
        *,
        agent_id: uuid.UUID | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Schedule]:
        """One page of schedules (`agent_id`'s only, if given), oldest first."""
        response = await self._http.send(page_call("/v1/schedules", limit, cursor, agent_id))
        return Page[Schedule].model_validate(response.json())

    async def list(
        self, *, agent_id: uuid.UUID | str | None = None, limit: int = 50
    ) -> AsyncIterator[Schedule]:
        """Every schedule (`agent_id`'s only, if given), oldest first."""
        cursor: str | None = None
        while True:
            page = await self.page(agent_id=agent_id, limit=limit, cursor=cursor)
            for schedule in page.data:
                yield schedule
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def runs(
        self, schedule_id: uuid.UUID | str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ScheduleFire]:
        """One page of the schedule's fires, newest first, each with the run it made."""
        response = await self._http.send(
            page_call(f"/v1/schedules/{schedule_id}/runs", limit, cursor)
        )
        return Page[ScheduleFire].model_validate(response.json())
