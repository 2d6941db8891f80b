"""Tenant isolation over the whole route table: tenant B (globex) naming any of tenant A's
(acme) ids gets the 404 an unknown id gets, and changes no row; B's listings, searches and
writes in its own scope show and touch nothing of A's. Every route of the real app must have an
entry in CASES (or be exempt, with the reason), so a new route fails here until it is covered."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from agents.runs.events import StepStarted
from core.db import transaction
from tests.api import support
from tests.api.support import Headers

USER = "ann"
"""The end user both tenants know: user ids are the tenant's own, not a shared namespace."""


@dataclass(frozen=True)
class World:
    """Both tenants' resources: path parameter (or other name) -> value."""

    a: dict[str, str]
    b: dict[str, str]


Response = Any
"""What the TestClient answers (Starlette types it with a module mypy does not see)."""

Values = Callable[[World], Any]
"""A request body or query, built from the world."""


@dataclass(frozen=True)
class Foreign:
    """Tenant B sends tenant A's ids: 404 with the error envelope, exactly as for ids that never
    existed, before anything is streamed, and no row of any tenant changes."""

    body: Values | None = None
    params: Values | None = None
    path_of: Literal["a", "b"] = "a"
    """Whose ids fill the path ("b": A's ids travel in the body or query instead)."""
    ids: Mapping[str, str] = field(default_factory=dict)
    """Path parameter -> the world's key to fill it with, where the names differ."""


@dataclass(frozen=True)
class Scoped:
    """A request naming none of A's ids (a listing, a search, a create, an erase by user id):
    B gets `status` with its own data only, and none of A's rows changes."""

    status: int
    body: Values | None = None
    params: Values | None = None
    shows: Values | None = None
    """Text the answer must hold (B's own item), so an empty answer cannot pass for a scoped
    one."""


@dataclass(frozen=True)
class Exempt:
    """A route that holds no tenant data."""

    reason: str


Case = Foreign | Scoped | Exempt

# Every (method, path template) of the app. Foreign cases fill the path with A's ids.
CASES: dict[tuple[str, str], tuple[Case, ...]] = {
    ("GET", "/healthz"): (Exempt("liveness probe, no authentication and no data"),),
    ("GET", "/readyz"): (Exempt("readiness probe, no authentication and no data"),),
    ("GET", "/metrics"): (
        Exempt("Prometheus metrics: counts and timings by route template, no tenant data"),
    ),
    ("GET", "/v1/me"): (Exempt("describes the presented key only (tests/api/test_auth.py)"),),
    ("GET", "/openapi.json"): (Exempt("the API's schema, the same for everyone"),),
    ("GET", "/docs"): (Exempt("Swagger UI page, static"),),
    ("GET", "/ui"): (Exempt("redirect to the dashboard's static page"),),
    ("WEBSOCKET", "/ui"): (
        Exempt("the dashboard's static files (a mount: HTML, JS, CSS), no tenant data"),
    ),
    # agents
    ("POST", "/v1/agents"): (
        # Names are unique per tenant: A's name taken must not be a 409 that reveals it.
        Scoped(201, body=lambda w: {"name": w.a["agent_name"]}),
        # Another tenant's MCP server cannot be named: it does not exist for B.
        Scoped(
            422,
            body=lambda w: {"name": "borrower", "mcp_servers": [{"server": w.a["server_name"]}]},
        ),
    ),
    ("GET", "/v1/agents"): (Scoped(200, shows=lambda w: w.b["agent_id"]),),
    ("GET", "/v1/agents/{agent_id}"): (Foreign(),),
    ("PATCH", "/v1/agents/{agent_id}"): (Foreign(body=lambda w: {"instructions": "mine now"}),),
    ("DELETE", "/v1/agents/{agent_id}"): (Foreign(),),
    # sessions and messages
    ("POST", "/v1/agents/{agent_id}/sessions"): (Foreign(body=lambda w: {"user_id": USER}),),
    ("GET", "/v1/agents/{agent_id}/sessions"): (
        Foreign(),
        Foreign(params=lambda w: {"user_id": USER}),
    ),
    ("GET", "/v1/sessions/{session_id}"): (Foreign(),),
    ("DELETE", "/v1/sessions/{session_id}"): (Foreign(),),
    ("GET", "/v1/sessions/{session_id}/messages"): (Foreign(),),
    ("GET", "/v1/sessions/{session_id}/runs"): (Foreign(),),
    ("POST", "/v1/sessions/{session_id}/messages"): (
        Foreign(body=lambda w: {"content": "hello", "queue": True}),
        Foreign(body=lambda w: {"content": "hello", "stream": True}),
        Foreign(body=lambda w: {"content": "hello", "wait": True, "timeout_s": 1}),
    ),
    # runs
    ("GET", "/v1/runs"): (
        Scoped(200, shows=lambda w: w.b["run_id"]),
        Scoped(200, params=lambda w: {"agent_id": w.a["agent_id"]}),
        Scoped(200, params=lambda w: {"session_id": w.a["session_id"], "user_id": USER}),
        Scoped(200, params=lambda w: {"batch_id": w.a["batch_id"]}),
    ),
    ("GET", "/v1/runs/{run_id}"): (Foreign(),),
    ("GET", "/v1/runs/{run_id}/steps"): (Foreign(ids={"run_id": "finished_run_id"}),),
    # A finished run: were the stream served, it would end rather than hang the test.
    ("GET", "/v1/runs/{run_id}/events"): (Foreign(ids={"run_id": "finished_run_id"}),),
    ("POST", "/v1/runs/{run_id}/cancel"): (Foreign(),),
    ("POST", "/v1/runs/{run_id}/approvals"): (
        Foreign(body=lambda w: {"decisions": [{"call_id": "call_1", "decision": "approve"}]}),
    ),
    # MCP servers
    ("POST", "/v1/mcp-servers"): (
        Scoped(201, body=lambda w: {"name": w.a["server_name"], "url": "https://b.example/mcp"}),
    ),
    ("GET", "/v1/mcp-servers"): (Scoped(200, shows=lambda w: w.b["server_id"]),),
    ("GET", "/v1/mcp-servers/{server_id}"): (Foreign(),),
    ("PATCH", "/v1/mcp-servers/{server_id}"): (
        Foreign(body=lambda w: {"url": "https://evil.example/mcp"}),
    ),
    ("DELETE", "/v1/mcp-servers/{server_id}"): (Foreign(),),
    # webhooks
    ("POST", "/v1/webhooks"): (
        Scoped(201, body=lambda w: {"url": "https://b.example/hook", "events": ["run.failed"]}),
        # Another tenant's agent cannot be a filter: it does not exist for B.
        Foreign(
            path_of="b",
            body=lambda w: {
                "url": "https://b.example/hook",
                "events": ["run.failed"],
                "agent_id": w.a["agent_id"],
            },
        ),
    ),
    ("GET", "/v1/webhooks"): (Scoped(200, shows=lambda w: w.b["webhook_id"]),),
    ("GET", "/v1/webhooks/{webhook_id}"): (Foreign(),),
    ("PATCH", "/v1/webhooks/{webhook_id}"): (Foreign(body=lambda w: {"enabled": False}),),
    ("DELETE", "/v1/webhooks/{webhook_id}"): (Foreign(),),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): (Foreign(),),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (Foreign(),),
    # B's own key is made or replaced; A's stays as it was.
    ("POST", "/v1/webhooks/request-secret"): (Scoped(201),),
    ("GET", "/v1/webhooks/request-secret"): (Scoped(200),),
    ("GET", "/v1/webhooks/request-deliveries"): (
        Scoped(200, shows=lambda w: w.b["request_delivery_id"]),
        Scoped(200, params=lambda w: {"run_id": w.a["finished_run_id"]}),
    ),
    ("POST", "/v1/webhooks/request-deliveries/{delivery_id}/redeliver"): (
        Foreign(ids={"delivery_id": "request_delivery_id"}),
    ),
    # schedules
    ("POST", "/v1/schedules"): (
        Foreign(
            path_of="b",
            body=lambda w: {"agent_id": w.a["agent_id"], "input": "q", "interval_s": 60},
        ),
        # B's agent, A's session as the fixed one: looked up in B's tenant.
        Foreign(
            path_of="b",
            body=lambda w: {
                "agent_id": w.b["agent_id"],
                "input": "q",
                "interval_s": 60,
                "user_id": USER,
                "session_mode": "fixed",
                "session_id": w.a["session_id"],
            },
        ),
    ),
    ("GET", "/v1/schedules"): (
        Scoped(200, shows=lambda w: w.b["schedule_id"]),
        Scoped(200, params=lambda w: {"agent_id": w.a["agent_id"]}),
    ),
    ("GET", "/v1/schedules/{schedule_id}"): (Foreign(),),
    ("PATCH", "/v1/schedules/{schedule_id}"): (Foreign(body=lambda w: {"enabled": False}),),
    ("DELETE", "/v1/schedules/{schedule_id}"): (Foreign(),),
    ("GET", "/v1/schedules/{schedule_id}/runs"): (Foreign(),),
    # batches
    ("POST", "/v1/batches"): (
        Foreign(body=lambda w: {"agent_id": w.a["agent_id"], "items": [{"input": "q"}]}),
    ),
    ("GET", "/v1/batches"): (Scoped(200, shows=lambda w: w.b["batch_id"]),),
    ("GET", "/v1/batches/{batch_id}"): (Foreign(),),
    ("POST", "/v1/batches/{batch_id}/cancel"): (Foreign(),),
    ("GET", "/v1/batches/{batch_id}/results"): (Foreign(),),
    # long-term memories
    ("POST", "/v1/agents/{agent_id}/memories"): (
        Foreign(body=lambda w: {"content": "planted", "user_id": USER}),
        # B's own agent, A's session: the session is looked up in B's tenant.
        Foreign(body=lambda w: {"content": "x", "session_id": w.a["session_id"]}, path_of="b"),
    ),
    ("GET", "/v1/agents/{agent_id}/memories"): (
        Foreign(),
        Foreign(params=lambda w: {"query": "What is Ann allergic to?"}),
        Scoped(200, shows=lambda w: w.b["memory_id"]),
        Scoped(
            200,
            params=lambda w: {"query": w.a["memory_content"], "k": 50},
            shows=lambda w: w.b["memory_id"],
        ),
        Scoped(200, params=lambda w: {"session_id": w.a["session_id"]}),
    ),
    ("GET", "/v1/memories/{memory_id}"): (Foreign(),),
    ("PATCH", "/v1/memories/{memory_id}"): (Foreign(body=lambda w: {"importance": 0.9}),),
    ("DELETE", "/v1/memories/{memory_id}"): (Foreign(),),
    ("DELETE", "/v1/agents/{agent_id}/users/{user_id:path}/memories"): (Foreign(),),
    ("DELETE", "/v1/agents/{agent_id}/users/{user_id:path}"): (Foreign(),),
    ("DELETE", "/v1/users/{user_id:path}/memories"): (Scoped(200),),
    ("DELETE", "/v1/users/{user_id:path}"): (Scoped(200),),
    # core memory blocks
    ("GET", "/v1/agents/{agent_id}/blocks"): (
        Foreign(),
        Foreign(params=lambda w: {"user_id": USER}),
        Scoped(200, params=lambda w: {"user_id": USER}, shows=lambda w: w.b["human_value"]),
    ),
    ("GET", "/v1/agents/{agent_id}/blocks/{label}"): (Foreign(),),
    ("PUT", "/v1/agents/{agent_id}/blocks/{label}"): (
        Foreign(body=lambda w: {"value": "mine now"}),
        Foreign(
            body=lambda w: {"value": "mine now", "user_id": USER}, ids={"label": "human_label"}
        ),
    ),
    ("DELETE", "/v1/agents/{agent_id}/blocks/{label}"): (
        Foreign(),
        Foreign(params=lambda w: {"user_id": USER}, ids={"label": "human_label"}),
    ),
    ("GET", "/v1/agents/{agent_id}/blocks/{label}/history"): (Foreign(),),
}

_UUID_KEYS = (
    "agent_id",
    "session_id",
    "run_id",
    "finished_run_id",
    "memory_id",
    "batch_id",
    "schedule_id",
)
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _app_routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path template) of every route the real app serves, routers' included (the
    walk FastAPI's OpenAPI generation does, schema-hidden routes too); HEAD is Starlette's
    automatic twin of GET, not a route of its own; a route without methods (a websocket) is
    listed as WEBSOCKET, so it needs a case too."""
    app = client.app
    assert isinstance(app, FastAPI)
    found = set()
    for route in iter_route_contexts(app.routes):
        assert route.path is not None, f"a route without a path: {route}"
        for method in route.methods or {"WEBSOCKET"}:
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_route_has_an_isolation_case(client: TestClient) -> None:
    routes = _app_routes(client)
    missing = sorted(routes - CASES.keys())
    assert not missing, "\n".join(
        f"route {method} {path} has no isolation case: add it to CASES in {__name__}"
        for method, path in missing
    )
    stale = sorted(CASES.keys() - routes)
    assert not stale, f"CASES names routes the app does not have: {stale}"


def test_every_tenant_table_is_snapshotted(engine: Engine) -> None:
    # The snapshot finds tables by their tenant_id column; a table of tenant data without one
    # would escape it.
    tables = _tables(engine)
    unscoped = {name for name, columns in tables.items() if "tenant_id" not in columns}
    # worker_heartbeats: one row per worker process (host, pid, concurrency), no tenant data.
    assert unscoped == {"tenants", "alembic_version", "worker_heartbeats"}, unscoped


def _cases() -> list[Any]:
    params = []
    for (method, path), cases in CASES.items():
        for number, case in enumerate(cases):
            if not isinstance(case, Exempt):
                params.append(pytest.param(method, path, case, id=f"{method} {path} #{number}"))
    return params


@pytest.fixture
def client(memory_client: TestClient) -> TestClient:
    """The app with the real-embedder memory store: every kind of resource can be made."""
    return memory_client


def _ok(response: Response, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201, 202)), response.text
    return response.json()


def _resources(
    client: TestClient, engine: Engine, headers: Headers, agent_name: str, marker: str
) -> dict[str, str]:
    """One of each resource kind for the key's tenant; `marker` is in every text it writes."""
    me = _ok(client.get("/v1/me", headers=headers))
    agent = _ok(client.post("/v1/agents", json={"name": agent_name}, headers=headers))
    chat = _ok(
        client.post(f"/v1/agents/{agent['id']}/sessions", json={"user_id": USER}, headers=headers)
    )
    hook = _ok(
        client.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/in", "events": ["run.succeeded"]},
            headers=headers,
        ),
        201,
    )
    messages = f"/v1/sessions/{chat['id']}/messages"
    _ok(client.post("/v1/webhooks/request-secret", headers=headers), 201)
    first = {"content": f"{marker} first", "webhook_url": "https://hooks.example.com/one"}
    finished = _ok(client.post(messages, json=first, headers=headers))
    support.start(engine, finished["id"])
    support.event(engine, finished["id"], StepStarted(step=1, attempt=1))
    support.finish(engine, finished["id"], output=f"{marker} answer")
    queued = _ok(client.post(messages, json={"content": f"{marker} second"}, headers=headers))
    memory_content = f"{marker}: Ann is allergic to peanuts."
    memory = _ok(
        client.post(
            f"/v1/agents/{agent['id']}/memories",
            json={"content": memory_content, "session_id": chat["id"]},
            headers=headers,
        ),
        201,
    )
    blocks = f"/v1/agents/{agent['id']}/blocks"
    human_value = f"{marker}: Ann, plan pro."
    _ok(client.put(f"{blocks}/persona", json={"value": f"{marker} persona"}, headers=headers))
    _ok(
        client.put(f"{blocks}/human", json={"value": human_value, "user_id": USER}, headers=headers)
    )
    batch = _ok(
        client.post(
            "/v1/batches",
            json={"agent_id": agent["id"], "items": [{"input": f"{marker} q{i}"} for i in (1, 2)]},
            headers=headers,
        ),
        201,
    )
    server = _ok(
        client.post(
            "/v1/mcp-servers",
            json={
                "name": f"{agent_name}-tools",
                "url": "https://mcp.example.com/mcp",
                "headers": {"Authorization": f"Bearer {marker}"},
            },
            headers=headers,
        ),
        201,
    )
    deliveries = _ok(client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers))
    per_request = _ok(client.get("/v1/webhooks/request-deliveries", headers=headers))
    schedule = _ok(
        client.post(
            "/v1/schedules",
            json={
                "agent_id": agent["id"],
                "input": f"{marker} every hour",
                "cron": "0 * * * *",
                "user_id": USER,
            },
            headers=headers,
        ),
        201,
    )
    return {
        "request_delivery_id": per_request["data"][0]["id"],
        "schedule_id": schedule["id"],
        "webhook_id": hook["id"],
        "delivery_id": deliveries["data"][0]["id"],
        "server_id": server["id"],
        "server_name": server["name"],
        "tenant_id": me["tenant_id"],
        "agent_name": agent_name,
        "agent_id": agent["id"],
        "session_id": chat["id"],
        "run_id": queued["id"],
        "finished_run_id": finished["id"],
        "memory_id": memory["id"],
        "memory_content": memory_content,
        "batch_id": batch["id"],
        "label": "persona",
        "human_label": "human",
        "human_value": human_value,
        "user_id": USER,
        "marker": marker,
    }


@pytest.fixture
def world(client: TestClient, engine: Engine, auth: Headers, other_auth: Headers) -> World:
    return World(
        a=_resources(client, engine, auth, "helper", "acme-secret"),
        b=_resources(client, engine, other_auth, "assistant", "globex-own"),
    )


def _tables(engine: Engine) -> dict[str, set[str]]:
    """Table -> its columns, for every table of the public schema."""
    with transaction(engine) as session:
        rows = session.execute(
            text(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
            )
        ).all()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def _snapshot(engine: Engine, tenant_id: str | None = None) -> dict[str, list[str]]:
    """Every row of every table as JSON text, sorted; with `tenant_id`, only that tenant's."""
    snapshot = {}
    for table, columns in _tables(engine).items():
        where, params = "", {}
        if tenant_id is not None and "tenant_id" in columns:
            where, params = "WHERE tenant_id = :tenant", {"tenant": tenant_id}
        elif tenant_id is not None and table == "tenants":
            where, params = "WHERE id = :tenant", {"tenant": tenant_id}
        with transaction(engine) as session:
            rows = session.scalars(
                text(f'SELECT to_jsonb(t)::text FROM "{table}" t {where} ORDER BY 1'),  # noqa: S608
                params,
            ).all()
        snapshot[table] = list(rows)
    return snapshot


def _tenant_ids(engine: Engine, tenant_id: str) -> set[str]:
    """The ids of every row of the tenant (agents, sessions, runs, messages, memories, ...)."""
    ids: set[str] = set()
    for table, columns in _tables(engine).items():
        if {"id", "tenant_id"} <= columns:
            with transaction(engine) as session:
                found = session.scalars(
                    text(f'SELECT id::text FROM "{table}" WHERE tenant_id = :t'),  # noqa: S608
                    {"t": tenant_id},
                )
                ids.update(found)
    return ids


def _send(
    client: TestClient,
    method: str,
    path: str,
    ids: Mapping[str, str],
    headers: Headers,
    body: Any,
    params: Any,
) -> tuple[Response, str]:
    def fill(match: re.Match[str]) -> str:
        return quote(ids[match[1]], safe="")

    url = _PARAM.sub(fill, path)
    response = client.request(method, url, json=body, params=params, headers=headers)
    return response, url


def _with_unknown_ids(world: World) -> tuple[World, dict[str, str]]:
    """The world with each of A's uuids replaced by one that names nothing, and the mapping."""
    fresh = {world.a[key]: str(uuid.uuid4()) for key in _UUID_KEYS}
    return World(a={k: fresh.get(v, v) for k, v in world.a.items()}, b=world.b), fresh


@pytest.mark.parametrize(("method", "path", "case"), _cases())
def test_another_tenant_is_isolated(
    client: TestClient,
    engine: Engine,
    other_auth: Headers,
    world: World,
    method: str,
    path: str,
    case: Foreign | Scoped,
) -> None:
    a_ids = _tenant_ids(engine, world.a["tenant_id"])
    assert world.a["agent_id"] in a_ids
    assert world.a["memory_id"] in a_ids
    if isinstance(case, Foreign):
        _check_foreign(client, engine, other_auth, world, a_ids, method, path, case)
    else:
        _check_scoped(client, engine, other_auth, world, a_ids, method, path, case)


def _check_foreign(
    client: TestClient,
    engine: Engine,
    other_auth: Headers,
    world: World,
    a_ids: set[str],
    method: str,
    path: str,
    case: Foreign,
) -> None:
    def request(w: World) -> tuple[Response, str, str]:
        owner = w.a if case.path_of == "a" else w.b
        ids = {**owner, **{param: owner[key] for param, key in case.ids.items()}}
        body = case.body(w) if case.body else None
        params = case.params(w) if case.params else None
        response, url = _send(client, method, path, ids, other_auth, body, params)
        return response, url, f"{url} {body} {params}"

    before = _snapshot(engine)
    response, url, sent = request(world)
    assert response.status_code == 404, f"{method} {url}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")  # nothing streamed
    error = response.json()
    assert set(error) == {"error"}
    assert error["error"]["type"] == "not_found", error
    leaked = {ident for ident in a_ids if ident in response.text and ident not in sent}
    assert not leaked, f"the 404 names ids of the other tenant: {leaked}"
    assert world.a["marker"] not in response.text
    assert _snapshot(engine) == before, f"{method} {url} by another tenant changed rows"

    # Indistinguishable from ids that never existed: the same answer, ids aside.
    unknown_world, fresh = _with_unknown_ids(world)
    unknown, _, _ = request(unknown_world)
    expected = response.text
    for old, new in fresh.items():
        expected = expected.replace(old, new)
    assert (unknown.status_code, unknown.text) == (404, expected)


def _check_scoped(
    client: TestClient,
    engine: Engine,
    other_auth: Headers,
    world: World,
    a_ids: set[str],
    method: str,
    path: str,
    case: Scoped,
) -> None:
    before = _snapshot(engine, world.a["tenant_id"])
    body = case.body(world) if case.body else None
    params = case.params(world) if case.params else None
    response, url = _send(client, method, path, world.b, other_auth, body, params)
    assert response.status_code == case.status, f"{method} {url}: {response.text}"
    sent = f"{url} {body} {params}"
    leaked = {ident for ident in a_ids if ident in response.text and ident not in sent}
    assert not leaked, f"{method} {url} shows the other tenant's ids: {leaked}"
    assert world.a["marker"] not in response.text, response.text
    if case.shows is not None:
        assert case.shows(world) in response.text, response.text
    after = _snapshot(engine, world.a["tenant_id"])
    assert after == before, f"{method} {url} by another tenant changed the first one's rows"
