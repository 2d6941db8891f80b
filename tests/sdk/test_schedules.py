"""client.schedules: the requests it sends (scripted answers), and the real API."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import agentmill
import pytest
from agentmill import Schedule, ScheduleFire

from tests.sdk.fakes import AGENT_ID, NOW, Server, answer, client, error_body, run_body

SCHEDULE_ID = uuid.UUID("5f0c0000-0000-4000-8000-000000000005")


def schedule_body(**changes: Any) -> dict[str, Any]:
    """A schedule as the API returns it."""
    body: dict[str, Any] = {
        "id": str(SCHEDULE_ID),
        "agent_id": str(AGENT_ID),
        "description": "",
        "cron": "0 9 * * *",
        "timezone": "UTC",
        "interval_s": None,
        "anchor_at": NOW,
        "input": "Daily report",
        "user_id": None,
        "session_mode": "new",
        "session_id": None,
        "metadata": {},
        "missed": "run_once",
        "enabled": True,
        "next_fire_at": NOW,
        "last_fire_at": None,
        "last_error": None,
        "fires": 0,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return {**body, **changes}


def test_create_sends_the_fields_given_and_is_retried_with_its_key() -> None:
    unavailable = answer(503, error_body("server_error", "busy"))
    server = Server([unavailable, answer(201, schedule_body(interval_s=60, cron=None))])
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    created = client(server).schedules.create(AGENT_ID, "ping", interval_s=60, start_at=start)
    assert isinstance(created, Schedule)
    first, second = server.requests
    assert (first.method, first.url.path) == ("POST", "/v1/schedules")
    assert json.loads(first.content) == {
        "agent_id": str(AGENT_ID),
        "input": "ping",
        "interval_s": 60,
        "start_at": "2030-01-01T09:00:00+00:00",
        "session_mode": "new",
        "missed": "run_once",
        "enabled": True,
        "description": "",
    }
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_update_sends_only_the_fields_given_and_none_clears() -> None:
    server = Server([answer(200, schedule_body())])
    client(server).schedules.update(SCHEDULE_ID, cron="*/5 * * * *", user_id=None)
    request = server.requests[0]
    assert (request.method, request.url.path) == ("PATCH", f"/v1/schedules/{SCHEDULE_ID}")
    assert json.loads(request.content) == {"cron": "*/5 * * * *", "user_id": None}


def test_pause_is_a_patch_of_enabled_and_safe_to_retry() -> None:
    dropped = answer(502, error_body("server_error", "bad gateway"))
    server = Server([dropped, answer(200, schedule_body(enabled=False, next_fire_at=None))])
    paused = client(server).schedules.pause(SCHEDULE_ID)
    assert paused.next_fire_at is None
    assert [json.loads(r.content) for r in server.requests] == [{"enabled": False}] * 2


def test_runs_reads_fires_with_their_runs() -> None:
    fires = [
        {"fire_at": NOW, "late": True, "created_at": NOW, "run": run_body("queued")},
        {"fire_at": NOW, "late": False, "created_at": NOW, "run": None},
    ]
    server = Server([answer(200, {"data": fires, "next_cursor": "c2"})])
    page = client(server).schedules.runs(SCHEDULE_ID, limit=2)
    assert all(isinstance(fire, ScheduleFire) for fire in page.data)
    assert page.data[0].run is not None
    assert page.data[0].run.status == "queued"
    assert page.data[1].run is None
    assert page.next_cursor == "c2"
    assert dict(server.requests[0].url.params) == {"limit": "2"}


def test_schedules_through_the_sdk(api_url: str, api_key: str) -> None:
    paris = ZoneInfo("Europe/Paris")
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    with agentmill.Client(api_key, base_url=api_url) as am:
        agent = am.agents.create("reporter")
        other = am.agents.create("other")
        daily = am.schedules.create(
            agent.id,
            "Write the daily report.",
            cron="0 9 * * 1-5",
            timezone="Europe/Paris",
            user_id="ann",
            metadata={"team": "ops"},
            description="weekday mornings",
        )
        assert (daily.cron, daily.timezone, daily.interval_s) == ("0 9 * * 1-5", paris.key, None)
        assert (daily.user_id, daily.metadata, daily.fires) == ("ann", {"team": "ops"}, 0)
        assert daily.next_fire_at is not None
        local = daily.next_fire_at.astimezone(paris)
        assert (local.hour, local.minute) == (9, 0)
        assert local.weekday() < 5
        hourly = am.schedules.create(agent.id, "ping", interval_s=3600, start_at=start)
        assert (hourly.cron, hourly.interval_s, hourly.next_fire_at) == (None, 3600, start)

        assert [s.id for s in am.schedules.list(limit=1)] == [daily.id, hourly.id]
        assert list(am.schedules.list(agent_id=other.id)) == []
        assert am.schedules.get(daily.id) == daily

        paused = am.schedules.pause(daily.id)
        assert (paused.enabled, paused.next_fire_at) == (False, None)
        assert am.schedules.get(daily.id).next_fire_at is None
        resumed = am.schedules.resume(daily.id)
        assert resumed.enabled
        assert resumed.next_fire_at == daily.next_fire_at

        changed = am.schedules.update(daily.id, interval_s=600, user_id=None, description="often")
        assert (changed.cron, changed.interval_s) == (None, 600)
        assert (changed.user_id, changed.description) == (None, "often")

        assert am.schedules.runs(hourly.id) == agentmill.Page[ScheduleFire](data=[])

        am.schedules.delete(hourly.id)
        with pytest.raises(agentmill.NotFoundError):
            am.schedules.get(hourly.id)
        assert [s.id for s in am.schedules.list()] == [daily.id]


def test_schedule_errors_through_the_sdk(api_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=api_url) as am:
        agent = am.agents.create("reporter")
        with pytest.raises(agentmill.UnprocessableEntityError) as bad_cron:
            am.schedules.create(agent.id, "hi", cron="61 * * * *")
        assert bad_cron.value.param == "cron"
        with pytest.raises(agentmill.UnprocessableEntityError):
            am.schedules.create(agent.id, "hi")  # neither cron nor interval_s
        with pytest.raises(agentmill.NotFoundError):
            am.schedules.create(uuid.uuid4(), "hi", interval_s=60)
        with pytest.raises(agentmill.NotFoundError):
            am.schedules.get(uuid.uuid4())
        with pytest.raises(agentmill.NotFoundError):
            am.schedules.pause(uuid.uuid4())
        with pytest.raises(agentmill.NotFoundError):
            am.schedules.runs(uuid.uuid4())


def test_async_schedules_through_the_sdk(api_url: str, api_key: str) -> None:
    async def scenario() -> tuple[list[uuid.UUID], uuid.UUID, bool]:
        async with agentmill.AsyncClient(api_key, base_url=api_url) as am:
            agent = await am.agents.create("reporter")
            made = [await am.schedules.create(agent.id, "ping", interval_s=n) for n in (60, 120)]
            listed = [s.id async for s in am.schedules.list(agent_id=agent.id, limit=1)]
            paused = await am.schedules.pause(made[0].id)
            await am.schedules.delete(made[1].id)
            fires = await am.schedules.runs(made[0].id)
            return listed, paused.id, paused.next_fire_at is None and fires.data == []

    listed, paused, quiet = asyncio.run(scenario())
    assert len(listed) == 2
    assert paused == listed[0]
    assert quiet
