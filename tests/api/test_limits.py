"""Limits the other route tests cannot reach under their 4 KiB body limit: the length of a user
message is a 422 of its own, below the body limit's 413. (docs/api.md, "Limits", lists every
limit and the test of each.) Deeply nested metadata is refused with a 422, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.schemas.common import MAX_JSON_DEPTH
from api.schemas.sessions import MAX_MESSAGE_CHARS
from core.config import Settings
from tests.api.support import Headers, RecordingQueue


@pytest.fixture
def client(settings: Settings, engine: Engine, run_queue: RecordingQueue) -> Iterator[TestClient]:
    """The app with the default 1 MiB body limit."""
    default = Settings.model_fields["max_body_bytes"].default
    roomy = settings.model_copy(update={"max_body_bytes": default})
    app = create_app(roomy, engine, run_queue=run_queue)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_message_over_the_length_limit_is_422(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue
) -> None:
    url = f"/v1/sessions/{session_id}/messages"
    response = client.post(url, json={"content": "x" * (MAX_MESSAGE_CHARS + 1)}, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "content"
    assert run_queue.runs == []
    fits = client.post(url, json={"content": "x" * MAX_MESSAGE_CHARS}, headers=auth)
    assert fits.status_code == 202, fits.text


def _nested(depth: int) -> str:
    """A JSON object holding lists nested `depth` levels deep (as raw text: json.dumps of
    such a value would recurse itself)."""
    return '{"deep": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 600, 5000])
def test_metadata_nested_too_deep_is_422(
    client: TestClient, auth: Headers, session_id: str, run_queue: RecordingQueue, depth: int
) -> None:
    body = '{"content": "hi", "metadata": ' + _nested(depth) + "}"
    headers = {**auth, "Content-Type": "application/json"}
    url = f"/v1/sessions/{session_id}/messages"
    response = client.post(url, content=body, headers=headers)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["type"] in ("invalid_request", "validation_error")
    if depth <= 600:  # parsed, then refused by the walker naming the field
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "metadata"
        assert "nested more than" in response.json()["error"]["message"]
    assert run_queue.runs == []
    fits = '{"content": "hi", "metadata": ' + _nested(MAX_JSON_DEPTH - 2) + "}"
    assert client.post(url, content=fits, headers=headers).status_code == 202


@pytest.mark.parametrize("depth", [600, 5000])
def test_a_memory_filter_nested_too_deep_is_422(
    client: TestClient, auth: Headers, agent_id: str, depth: int
) -> None:
    response = client.get(
        f"/v1/agents/{agent_id}/memories", params={"metadata": _nested(depth)}, headers=auth
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "metadata"
