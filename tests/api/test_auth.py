"""Bearer-key authentication on the API, through the real database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core import keys
from core.db import transaction
from core.tenants import revoke_key


def _assert_401(response_json: dict[str, dict[str, str]], fragment: str) -> None:
    assert response_json["error"]["type"] == "authentication_error"
    assert fragment in response_json["error"]["message"]


def test_valid_key_resolves_its_tenant(client: TestClient, api_key: str) -> None:
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_name"] == "acme"
    parsed = keys.parse(api_key)
    assert parsed is not None
    assert body["key_id"] == parsed.key_id


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (None, "missing API key"),
        ("Bearer", "Bearer <key>"),
        ("Basic dXNlcjpwYXNz", "Bearer <key>"),
        ("Bearer not-a-key", "malformed"),
        ("Bearer " + keys.generate().token, "invalid API key"),
    ],
)
def test_bad_credentials_get_401_envelope(
    client: TestClient, header: str | None, fragment: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    _assert_401(response.json(), fragment)


def test_revoked_key_gets_401(client: TestClient, engine: Engine, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    assert client.get("/v1/me", headers=headers).status_code == 200
    with transaction(engine) as session:
        revoke_key(session, api_key)
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    _assert_401(response.json(), "revoked")


def test_a_key_with_the_right_id_and_wrong_secret_is_refused(
    client: TestClient, api_key: str
) -> None:
    parsed = keys.parse(api_key)
    assert parsed is not None
    forged = f"am_{parsed.key_id}_{'B' * 43}"
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
