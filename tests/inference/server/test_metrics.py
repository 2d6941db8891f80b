"""The inference server's request counter, over its app with a scripted engine: `status` is
always the HTTP status code the client got, and a failure's exception type is counted apart
(`agentmill_inference_request_errors_total{error}`). The real model: test_app.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.errors import AgentmillError
from inference.errors import EngineFailed, Overloaded, PromptTooLong
from inference.server.app import create_inference_app
from tests.inference.server.test_completions import MODEL, ScriptedEngine

HI = [{"role": "user", "content": "hi"}]


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _chat(engine: ScriptedEngine, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The response status, and the counters after it (a fresh server per call)."""
    with TestClient(create_inference_app(engine), raise_server_exceptions=False) as client:
        status = client.post("/v1/chat/completions", json=body).status_code
        samples = _samples(client)
    requests = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "agentmill_inference_requests_total"
    }
    errors = {
        dict(labels)["error"]: value
        for (name, labels), value in samples.items()
        if name == "agentmill_inference_request_errors_total"
    }
    return status, {"requests": requests, "errors": errors}


def test_an_answer_counts_200_and_no_error() -> None:
    status, counted = _chat(ScriptedEngine(["Hello"]), {"model": MODEL, "messages": HI})
    assert status == 200
    assert counted == {"requests": {"200": 1}, "errors": {}}


@pytest.mark.parametrize(
    ("refusal", "status", "error"),
    [
        (Overloaded(4), 429, "Overloaded"),
        (PromptTooLong(5000, 1024), 400, "PromptTooLong"),
        (EngineFailed("the engine stopped"), 500, "EngineFailed"),
    ],
)
def test_a_failure_counts_its_status_and_its_exception_apart(
    refusal: AgentmillError, status: int, error: str
) -> None:
    engine = ScriptedEngine(refuse=refusal)
    got, counted = _chat(engine, {"model": MODEL, "messages": HI})
    assert got == status
    assert counted == {"requests": {str(status): 1}, "errors": {error: 1}}


def test_an_unknown_model_is_a_404() -> None:
    status, counted = _chat(ScriptedEngine(), {"model": "nope", "messages": HI})
    assert status == 404
    assert counted == {"requests": {"404": 1}, "errors": {"UnknownModel": 1}}


def test_tokenize_and_embeddings_count_status_codes() -> None:
    with TestClient(create_inference_app(ScriptedEngine())) as client:
        assert client.post("/tokenize", json={"model": MODEL, "prompt": "a b c"}).status_code == 200
        missing = client.post("/v1/embeddings", json={"model": "none", "input": "x"})
        assert missing.status_code == 404
        samples = _samples(client)
    by_endpoint = {
        (dict(labels)["endpoint"], dict(labels)["status"]): value
        for (name, labels), value in samples.items()
        if name == "agentmill_inference_requests_total"
    }
    assert by_endpoint == {("tokenize", "200"): 1, ("embeddings", "404"): 1}
    assert all(status.isdigit() for _, status in by_endpoint)
