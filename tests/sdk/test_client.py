"""The SDK against the real API served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import agentmill
import pytest
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.web.threaded import free_port, serve_in_thread


def test_public_surface() -> None:
    assert sorted(agentmill.__all__) == [
        "AgentmillAPIError",
        "AuthenticationError",
        "Client",
        "Me",
        "NotFoundError",
    ]


@pytest.fixture
def base_url(settings: Settings, engine: Engine) -> Iterator[str]:
    with serve_in_thread(create_app(settings, engine)) as url:
        yield url


def test_me_health_and_errors(base_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=base_url) as client:
        assert client.healthy()
        assert client.ready()
        me = client.me()
        assert me.tenant_name == "acme"
    with (
        agentmill.Client("am_000000000000_" + "x" * 43, base_url=base_url) as bad,
        pytest.raises(agentmill.AuthenticationError) as raised,
    ):
        bad.me()
    assert raised.value.status == 401
    assert raised.value.type == "authentication_error"


def test_unreachable_server_is_not_healthy() -> None:
    with agentmill.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2) as client:
        assert not client.healthy()
        assert not client.ready()
