"""/v1/schedules over the real app and database: creating (cron in a zone, or an interval),
the checks at the edge, pausing and resuming, changing the timing, the fire history, delete,
and Idempotency-Key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.schedules.firing import fire_due
from tests.api.support import Headers


def create(client: TestClient, auth: Headers, **body: Any) -> Any:
    return client.post("/v1/schedules", json=body, headers=auth)


def test_a_cron_schedule_in_a_zone_shows_its_next_fire(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    made = create(
        client,
        auth,
        agent_id=agent_id,
        input="Morning digest",
        cron="0 9 * * 1-5",
        timezone="Europe/Berlin",
        user_id="ann",
    )
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert (schedule["cron"], schedule["timezone"], schedule["interval_s"]) == (
        "0 9 * * 1-5",
        "Europe/Berlin",
        None,
    )
    fire = datetime.fromisoformat(schedule["next_fire_at"])
    assert fire > datetime.now(UTC)
    assert fire.astimezone(UTC).hour in (7, 8)  # 09:00 in Berlin, winter or summer
    assert fire.weekday() < 5
    assert (schedule["session_mode"], schedule["missed"], schedule["enabled"]) == (
        "new",
        "run_once",
        True,
    )
    listed = client.get("/v1/schedules", params={"agent_id": agent_id}, headers=auth).json()
    assert [s["id"] for s in listed["data"]] == [schedule["id"]]
    shown = client.get(f"/v1/schedules/{schedule['id']}", headers=auth).json()
    assert shown == schedule


def test_pause_resume_retime_and_delete(client: TestClient, auth: Headers, agent_id: str) -> None:
    schedule = create(client, auth, agent_id=agent_id, input="ping", interval_s=3600).json()
    path = f"/v1/schedules/{schedule['id']}"
    paused = client.patch(path, json={"enabled": False}, headers=auth)
    assert paused.status_code == 200, paused.text
    assert paused.json()["next_fire_at"] is None
    resumed = client.patch(path, json={"enabled": True}, headers=auth).json()
    assert resumed["next_fire_at"] is not None
    retimed = client.patch(path, json={"cron": "*/5 * * * *"}, headers=auth).json()
    assert (retimed["cron"], retimed["interval_s"]) == ("*/5 * * * *", None)
    fire = datetime.fromisoformat(retimed["next_fire_at"])
    assert fire.minute % 5 == 0
    assert fire - datetime.now(UTC) <= timedelta(minutes=5)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    anchored = client.patch(
        path, json={"interval_s": 60, "start_at": start.isoformat()}, headers=auth
    ).json()
    assert datetime.fromisoformat(anchored["next_fire_at"]) == start
    assert client.delete(path, headers=auth).status_code == 204
    assert client.get(path, headers=auth).status_code == 404
    assert client.get(f"{path}/runs", headers=auth).status_code == 404


def test_the_history_lists_each_fire_with_its_run(
    client: TestClient, auth: Headers, agent_id: str, engine: Engine
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=25)
    schedule = create(
        client,
        auth,
        agent_id=agent_id,
        input="tick",
        interval_s=10,
        start_at=start.isoformat(),
    ).json()
    with engine.begin() as conn:  # as if it had been made before its last three fire times
        conn.exec_driver_sql(
            "UPDATE schedules SET next_fire_at = anchor_at WHERE id = %s", (schedule["id"],)
        )
    assert fire_due(engine, lambda _run: None, grace_s=60) == 3
    page = client.get(f"/v1/schedules/{schedule['id']}/runs?limit=2", headers=auth).json()
    assert [datetime.fromisoformat(f["fire_at"]) for f in page["data"]] == [
        start + timedelta(seconds=20),
        start + timedelta(seconds=10),
    ]
    rest = client.get(
        f"/v1/schedules/{schedule['id']}/runs", params={"cursor": page["next_cursor"]}, headers=auth
    ).json()
    assert [datetime.fromisoformat(f["fire_at"]) for f in rest["data"]] == [start]
    assert rest["next_cursor"] is None
    run = rest["data"][0]["run"]
    assert run["input"] == "tick"
    assert run["metadata"]["schedule_id"] == schedule["id"]
    assert client.get(f"/v1/runs/{run['id']}", headers=auth).status_code == 200
    shown = client.get(f"/v1/schedules/{schedule['id']}", headers=auth).json()
    assert shown["fires"] == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 0 * * * *"}, "cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({}, "body"),
        ({"cron": "0 9 * * *", "interval_s": 60}, "body"),
        ({"interval_s": 0}, "interval_s"),
        ({"cron": "0 9 * * *", "start_at": "2030-01-01T00:00:00Z"}, "body"),
        ({"interval_s": 60, "start_at": "2030-01-01T00:00:00"}, "start_at"),
        ({"interval_s": 60, "input": "   "}, "input"),
        ({"interval_s": 60, "missed": "catch_up"}, "missed"),
        ({"interval_s": 60, "session_id": "00000000-0000-0000-0000-000000000001"}, "body"),
    ],
)
def test_unusable_schedules_are_refused(
    client: TestClient, auth: Headers, agent_id: str, body: dict[str, Any], param: str
) -> None:
    response = create(client, auth, agent_id=agent_id, **{"input": "x", **body})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"].startswith(param), response.json()
    assert client.get("/v1/schedules", headers=auth).json()["data"] == []


def test_a_fixed_session_must_be_the_agents_and_the_users(
    client: TestClient, auth: Headers, agent_id: str, session_id: str
) -> None:
    other_agent = client.post("/v1/agents", json={"name": "other"}, headers=auth).json()
    refused = create(
        client,
        auth,
        agent_id=other_agent["id"],
        input="x",
        interval_s=60,
        session_mode="fixed",
        session_id=session_id,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["param"] == "session_id"
    user = client.get(f"/v1/sessions/{session_id}", headers=auth).json()["user_id"]
    ok = create(
        client,
        auth,
        agent_id=agent_id,
        input="x",
        interval_s=60,
        session_mode="fixed",
        session_id=session_id,
        user_id=user,
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["session_id"] == session_id
    unknown = create(client, auth, agent_id=str(uuid.uuid4()), input="x", interval_s=60)
    assert unknown.status_code == 404


def test_a_retried_create_with_its_key_makes_one_schedule(
    client: TestClient, auth: Headers, agent_id: str
) -> None:
    body = {"agent_id": agent_id, "input": "x", "interval_s": 60}
    keyed = {**auth, "Idempotency-Key": "sched-1"}
    first = client.post("/v1/schedules", json=body, headers=keyed)
    again = client.post("/v1/schedules", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/v1/schedules", json={**body, "input": "y"}, headers=keyed)
    assert other.status_code == 409
    assert len(client.get("/v1/schedules", headers=auth).json()["data"]) == 1
