"""The router client turns every provider failure into our own error: ModelUnavailable for
what may heal (refused connections, 5xx, 429), ModelRejected for what will not (400s, 401,
404), each with a fixed message that never carries the provider's text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from core.config import Settings
from core.web.threaded import free_port
from inference.client import RouterClient
from inference.model_client import ChatRequest, ModelCallError, ModelRejected, ModelUnavailable
from tests.agents.fake_provider import LEAKY_WORDS, Provider, fake_provider

REQUEST = ChatRequest(model="remote", messages=[{"role": "user", "content": "hi"}], max_tokens=4)


@pytest.fixture
def provider() -> Iterator[Provider]:
    with fake_provider() as running:
        yield running


def client(api_base: str) -> RouterClient:
    route = {"model": "openai/fake", "api_base": api_base, "api_key": "k", "max_retries": 0}
    settings = Settings.model_validate({"models": {"remote": route}})
    return RouterClient(settings, "unused-local-model")


def failure(api_base: str, *, stream: bool = False) -> ModelCallError:
    sink = (lambda _piece: None) if stream else None
    with pytest.raises(ModelCallError) as caught:
        asyncio.run(client(api_base).complete(REQUEST, sink))
    error = caught.value
    assert error.__cause__ is not None  # the provider's exception, for the logs
    assert not any(word in str(error) for word in LEAKY_WORDS)
    return error


def test_a_refused_connection_is_unavailable() -> None:
    error = failure(f"http://127.0.0.1:{free_port()}/v1")
    assert isinstance(error, ModelUnavailable)
    assert (error.reason, error.message) == ("unreachable", "the model server could not be reached")


@pytest.mark.parametrize(
    ("status", "stream", "reason"),
    [(500, False, "server_error"), (503, True, "server_error"), (429, False, "rate_limited")],
)
def test_server_errors_and_rate_limits_are_unavailable(
    provider: Provider, status: int, stream: bool, reason: str
) -> None:
    provider.status = status
    error = failure(provider.url, stream=stream)
    assert isinstance(error, ModelUnavailable)
    assert error.reason == reason


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "bad_request"), (422, "bad_request"), (401, "authentication"), (404, "not_found")],
)
def test_client_errors_are_rejections(provider: Provider, status: int, reason: str) -> None:
    provider.status = status
    error = failure(provider.url)
    assert isinstance(error, ModelRejected)
    assert error.reason == reason
    assert error.message == ModelRejected.MESSAGES[reason]


def test_a_healthy_answer_still_comes_back(provider: Provider) -> None:
    result = asyncio.run(client(provider.url).complete(REQUEST))
    assert result.content == "back again"
    assert result.usage.completion_tokens == 2
