"""/v1/mcp-servers over the real app and database: registration, header secrecy, the checks
of where a server may be, and agents naming servers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.config import McpStdioCommand, Settings
from tests.api.support import Headers

URL = "https://mcp.example.com/mcp"


@pytest.fixture
def client(settings: Settings, engine: Any) -> Any:
    allowed = settings.model_copy(
        update={"mcp_stdio_servers": {"files": McpStdioCommand(command="true")}}
    )
    with TestClient(create_app(allowed, engine), raise_server_exceptions=False) as test_client:
        yield test_client


def test_register_list_read_change_and_delete(client: TestClient, auth: Headers) -> None:
    body = {"name": "github", "url": URL, "headers": {"Authorization": "Bearer ghp_s3cret"}}
    created = client.post("/v1/mcp-servers", json=body, headers=auth)
    assert created.status_code == 201, created.text
    server = created.json()
    assert "s3cret" not in created.text
    assert server["header_names"] == ["Authorization"]
    assert server["tools"] is None
    assert server["transport"] == "http"
    listed = client.get("/v1/mcp-servers", headers=auth).json()
    assert [s["id"] for s in listed["data"]] == [server["id"]]
    assert "s3cret" not in client.get(f"/v1/mcp-servers/{server['id']}", headers=auth).text

    patched = client.patch(
        f"/v1/mcp-servers/{server['id']}",
        json={"headers": {"X-Api-Key": "k2"}, "timeout_s": 5},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["header_names"] == ["X-Api-Key"]
    assert patched.json()["timeout_s"] == 5
    cleared = client.patch(
        f"/v1/mcp-servers/{server['id']}", json={"timeout_s": None}, headers=auth
    )
    assert cleared.json()["timeout_s"] is None

    again = client.post("/v1/mcp-servers", json=body, headers=auth)
    assert again.status_code == 409
    assert client.delete(f"/v1/mcp-servers/{server['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/mcp-servers/{server['id']}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "meta", "url": "http://169.254.169.254/latest"}, "url"),
        ({"name": "local", "url": "http://127.0.0.1:8000/mcp"}, "url"),
        ({"name": "home", "url": "http://localhost/mcp"}, "url"),
        ({"name": "ftp", "url": "ftp://example.com/"}, "url"),
        ({"name": "creds", "url": "https://u:p@example.com/"}, "url"),
        ({"name": "shell", "transport": "stdio", "command": "rm -rf /"}, "command"),
        ({"name": "mixed", "transport": "stdio", "command": "files", "url": URL}, "body"),
        ({"name": "nourl"}, "body"),
        ({"name": "a__b", "url": URL}, "name"),
        ({"name": "Upper", "url": URL}, "name"),
        ({"name": "h", "url": URL, "headers": {"Host": "x"}}, "headers"),
        ({"name": "h", "url": URL, "headers": {"X-A": "a\r\nInjected: 1"}}, "headers"),
    ],
)
def test_bad_registrations_are_refused(
    client: TestClient, auth: Headers, body: dict[str, Any], param: str
) -> None:
    response = client.post("/v1/mcp-servers", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"].startswith(param), response.json()
    assert client.get("/v1/mcp-servers", headers=auth).json()["data"] == []


def test_a_stdio_server_names_an_allowed_command(client: TestClient, auth: Headers) -> None:
    body = {"name": "files", "transport": "stdio", "command": "files"}
    response = client.post("/v1/mcp-servers", json=body, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["command"] == "files"
    patch = client.patch(
        f"/v1/mcp-servers/{response.json()['id']}", json={"url": URL}, headers=auth
    )
    assert patch.status_code == 422


def test_agents_name_registered_servers_only_and_keep_them_from_deletion(
    client: TestClient, auth: Headers
) -> None:
    server = client.post("/v1/mcp-servers", json={"name": "github", "url": URL}, headers=auth)
    unknown = client.post(
        "/v1/agents",
        json={"name": "a", "mcp_servers": [{"server": "gitlab"}]},
        headers=auth,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["param"] == "mcp_servers"
    body = {
        "name": "coder",
        "mcp_servers": [{"server": "github", "tools": ["search_issues"]}],
        "approval": {"tools": ["github__*"]},
    }
    agent = client.post("/v1/agents", json=body, headers=auth)
    assert agent.status_code == 201, agent.text
    assert agent.json()["mcp_servers"] == [{"server": "github", "tools": ["search_issues"]}]
    assert agent.json()["approval"]["tools"] == ["github__*"]
    twice = client.patch(
        f"/v1/agents/{agent.json()['id']}",
        json={"mcp_servers": [{"server": "github"}, {"server": "github"}]},
        headers=auth,
    )
    assert twice.status_code == 422

    in_use = client.delete(f"/v1/mcp-servers/{server.json()['id']}", headers=auth)
    assert in_use.status_code == 409
    assert "coder" in in_use.json()["error"]["message"]
    freed = client.patch(f"/v1/agents/{agent.json()['id']}", json={"mcp_servers": []}, headers=auth)
    assert freed.json()["mcp_servers"] == []
    assert client.delete(f"/v1/mcp-servers/{server.json()['id']}", headers=auth).status_code == 204
