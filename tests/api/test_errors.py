"""Every error comes back in the envelope, with the right status and no stack trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings


class _Item(BaseModel):
    name: str = Field(min_length=1)
    size: int


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    """The real app plus two routes that only exist to exercise the generic handlers."""
    application = create_app(settings, engine)

    @application.post("/_test/items")
    def make_item(item: _Item) -> dict[str, str]:
        return {"name": item.name}

    @application.get("/_test/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    return application


@pytest.fixture
def test_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _error(response_json: dict[str, dict[str, str]]) -> dict[str, str]:
    assert set(response_json) == {"error"}
    error = response_json["error"]
    assert {"type", "message"} <= set(error)
    return error


def test_unknown_route_is_404(test_client: TestClient) -> None:
    response = test_client.get("/v1/nothing-here")
    assert response.status_code == 404
    error = _error(response.json())
    assert error["type"] == "not_found"
    assert "/v1/nothing-here" in error["message"]


def test_wrong_method_is_405_with_allow(test_client: TestClient) -> None:
    response = test_client.post("/healthz")
    assert response.status_code == 405
    assert _error(response.json())["type"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]


def test_validation_error_names_the_field(test_client: TestClient) -> None:
    response = test_client.post("/_test/items", json={"name": "", "size": 3})
    assert response.status_code == 422
    error = _error(response.json())
    assert error["type"] == "validation_error"
    assert error["param"] == "name"
    response = test_client.post("/_test/items", json={"name": "x"})
    assert _error(response.json())["param"] == "size"


def test_malformed_json_is_400(test_client: TestClient) -> None:
    response = test_client.post(
        "/_test/items", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in _error(response.json())["message"]


def test_oversize_body_is_413(test_client: TestClient) -> None:
    big = b'{"name": "' + b"x" * 5000 + b'", "size": 1}'
    response = test_client.post(
        "/_test/items", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert _error(response.json())["type"] == "payload_too_large"


def test_oversize_chunked_body_is_413(test_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'", "size": 1}'

    response = test_client.post(
        "/_test/items", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_small_chunked_body_passes_through(test_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "ok",'
        yield b' "size": 1}'

    response = test_client.post(
        "/_test/items", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"name": "ok"}


def test_unhandled_exception_is_500_without_trace(test_client: TestClient) -> None:
    response = test_client.get("/_test/boom")
    assert response.status_code == 500
    error = _error(response.json())
    assert error == {"type": "internal_error", "message": "internal server error"}
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
