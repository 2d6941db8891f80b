"""The router client turns every provider failure into our own error: ModelUnavailable for
what may heal (refused connections, 5xx, 429), ModelRejected for what will not (400s, 401,
404), each with a fixed message that never carries the provider's text; token counts of the
local alias (its server's /tokenize) fail the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.config import Settings
from core.web.threaded import free_port, serve_in_thread
from inference.client.model_client import (
    ChatRequest,
    ModelCallError,
    ModelRejected,
    ModelUnavailable,
)
from inference.client.router import RouterClient
from tests.agents.fake_provider import LEAKY_DETAIL, LEAKY_WORDS, Provider, fake_provider

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


PROMPTS = [[{"role": "user", "content": "hi"}]]


def local_client(inference_url: str) -> RouterClient:
    return RouterClient(Settings.model_validate({"inference_url": inference_url}), "local-model")


def count_failure(inference_url: str) -> ModelCallError:
    with pytest.raises(ModelCallError) as caught:
        asyncio.run(local_client(inference_url).count_tokens("local", PROMPTS))
    assert not any(word in str(caught.value) for word in LEAKY_WORDS)
    return caught.value


@pytest.fixture
def tokenizer() -> Iterator[tuple[str, dict[str, Any]]]:
    """A /tokenize that answers with the status and body the test puts in the dict, and
    records the bodies it receives under "received"."""
    answer: dict[str, Any] = {"status": 200, "body": {}, "received": []}
    app = FastAPI()

    @app.post("/tokenize")
    async def tokenize(request: Request) -> JSONResponse:
        answer["received"].append(await request.json())
        return JSONResponse(answer["body"], status_code=answer["status"])

    with serve_in_thread(app) as base:
        yield f"{base}/v1", answer


def test_an_unreachable_tokenize_is_an_outage_not_a_crash() -> None:
    error = count_failure(f"http://127.0.0.1:{free_port()}/v1")
    assert isinstance(error, ModelUnavailable)
    assert error.reason == "unreachable"
    assert error.__cause__ is not None  # httpx's exception, for the logs


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (500, {"error": {"message": LEAKY_DETAIL}}, ModelUnavailable, "server_error"),
        (503, {}, ModelUnavailable, "server_error"),
        (429, {}, ModelUnavailable, "rate_limited"),
        (422, {"error": {"message": LEAKY_DETAIL}}, ModelRejected, "bad_request"),
        (404, {}, ModelRejected, "not_found"),
        (401, {}, ModelRejected, "authentication"),
        (200, {"count": 3}, ModelUnavailable, "server_error"),  # not the batch form's answer
        (200, {"count": 3, "items": []}, ModelUnavailable, "server_error"),  # one count short
    ],
)
def test_tokenize_failures_are_our_errors(
    tokenizer: tuple[str, dict[str, Any]],
    status: int,
    body: dict[str, Any],
    kind: type[ModelCallError],
    reason: str,
) -> None:
    url, answer = tokenizer
    answer.update(status=status, body=body)
    error = count_failure(url)
    assert isinstance(error, kind)
    assert error.reason == reason
    assert error.status == (status if status != 200 else None)


def test_tokenize_answers_come_back_in_order(tokenizer: tuple[str, dict[str, Any]]) -> None:
    url, answer = tokenizer
    answer["body"] = {"count": 12, "items": [{"count": 5, "tokens": []}, {"count": 7}]}
    prompts = [*PROMPTS, [{"role": "user", "content": "there"}]]
    assert asyncio.run(local_client(url).count_tokens("local", prompts)) == [5, 7]


def test_counts_are_kept_and_only_prompts_not_seen_are_sent(
    tokenizer: tuple[str, dict[str, Any]],
) -> None:
    url, answer = tokenizer
    client = local_client(url)
    a, b, c = ([{"role": "user", "content": text}] for text in ("a", "b", "c"))
    answer["body"] = {"count": 3, "items": [{"count": 1}, {"count": 2}]}
    assert asyncio.run(client.count_tokens("local", [a, b])) == [1, 2]
    answer["body"] = {"count": 3, "items": [{"count": 3}]}
    assert asyncio.run(client.count_tokens("local", [b, c, a, c])) == [2, 3, 1, 3]
    assert asyncio.run(client.count_tokens("local", [c, a])) == [3, 1]  # no request at all
    sent = [body["items"] for body in answer["received"]]
    assert sent == [[{"messages": a}, {"messages": b}], [{"messages": c}]]
    assert answer["received"][0]["model"] == "local-model"
