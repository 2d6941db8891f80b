"""Scripted server answers for the SDK's unit tests (served through httpx.MockTransport)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from agentmill import AsyncClient, Client, RetryPolicy

RUN_ID = uuid.UUID("5f0c0000-0000-4000-8000-000000000001")
SESSION_ID = uuid.UUID("5f0c0000-0000-4000-8000-000000000002")
AGENT_ID = uuid.UUID("5f0c0000-0000-4000-8000-000000000003")
NOW = "2025-01-01T00:00:00Z"


def run_body(status: str = "succeeded", **changes: Any) -> dict[str, Any]:
    """A run as GET /v1/runs/{id} returns it."""
    finished = status not in ("queued", "running")
    body: dict[str, Any] = {
        "id": str(RUN_ID),
        "session_id": str(SESSION_ID),
        "agent_id": str(AGENT_ID),
        "status": status,
        "input": "hi",
        "output": "hello" if status == "succeeded" else None,
        "stop_reason": "answer" if status == "succeeded" else None,
        "error": None,
        "steps": 1,
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.0},
        "attempts": 1,
        "cancel_requested": False,
        "created_at": NOW,
        "started_at": NOW,
        "finished_at": NOW if finished else None,
        "metadata": {},
    }
    return {**body, **changes}


def agent_body(name: str = "helper", **changes: Any) -> dict[str, Any]:
    """An agent as the API returns it."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "instructions": "",
        "model": "local",
        "tools": [],
        "memory": {
            "recall_k": 5,
            "blocks": None,
            "history_messages": 20,
            "save_episodes": True,
            "extract_facts": True,
            "shared_blocks_writable": False,
        },
        "max_steps": 8,
        "tool_choice": "auto",
        "temperature": None,
        "metadata": {},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return {**body, **changes}


def error_body(type_: str, message: str, param: str | None = None) -> dict[str, Any]:
    """The API's error envelope."""
    return {"error": {"type": type_, "message": message, "param": param}}


def sse(id_: int, type_: str, **data: Any) -> bytes:
    """One event in the server's SSE form."""
    payload = json.dumps({"run_id": str(RUN_ID), **data}, separators=(",", ":"))
    return f"id: {id_}\nevent: {type_}\ndata: {payload}\n\n".encode()


def run_events() -> list[bytes]:
    """The events of a short successful run, in order (ids 1-6)."""
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.0}
    return [
        sse(1, "run.queued", session_id=str(SESSION_ID)),
        sse(2, "run.started", attempt=1),
        sse(3, "step.started", step=1, attempt=1),
        sse(4, "message.delta", step=1, attempt=1, delta="hel"),
        sse(5, "message", message_id=str(uuid.uuid4()), role="assistant", content="hello"),
        sse(6, "run.succeeded", status="succeeded", stop_reason="answer", steps=1, usage=usage),
    ]


def dropping(chunks: list[bytes]) -> Iterator[bytes]:
    """A response body that sends `chunks`, then loses the connection."""
    yield from chunks
    raise httpx.RemoteProtocolError("peer closed connection")


async def dropping_async(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """`dropping` for an async client."""
    for chunk in chunks:
        yield chunk
    raise httpx.RemoteProtocolError("peer closed connection")


def event_stream(body: Any) -> httpx.Response:
    """A 200 text/event-stream response with `body` (bytes or an iterator of them)."""
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


@dataclass
class Server:
    """Answers requests with a script of handlers, one per request, recording each."""

    script: list[Callable[[httpx.Request], httpx.Response]]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.script[len(self.requests) - 1](request)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """The async transport's handler."""
        return self(request)


def answer(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that answers `status` with JSON `body`."""
    return lambda _request: httpx.Response(status, json=body, headers=headers)


class Sleeps(list[float]):
    """A sleep that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """The async form."""
        self.append(seconds)


FAST = RetryPolicy(max_retries=3, initial_delay_s=0.0, max_delay_s=0.0)
"""Retries without waiting."""


def client(server: Server, retry: RetryPolicy = FAST) -> Client:
    """A Client whose requests `server` answers."""
    transport = httpx.MockTransport(server)
    return Client("am_key", base_url="http://am.test", transport=transport, retry=retry)


def async_client(server: Server, retry: RetryPolicy = FAST) -> AsyncClient:
    """An AsyncClient whose requests `server` answers."""
    transport = httpx.MockTransport(server.handle_async)
    return AsyncClient("am_key", base_url="http://am.test", transport=transport, retry=retry)


def memory_body(content: str = "Ann likes tea.", **changes: Any) -> dict[str, Any]:
    """A memory as the API returns it."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "agent_id": str(AGENT_ID),
        "user_id": "ann",
        "session_id": None,
        "kind": "fact",
        "content": content,
        "importance": 0.5,
        "metadata": {},
        "created_at": NOW,
        "updated_at": NOW,
        "last_accessed_at": None,
        "access_count": 0,
        "source_run_id": None,
        "source_message_id": None,
    }
    return {**body, **changes}


def block_body(
    label: str = "persona", value: str = "I am terse.", **changes: Any
) -> dict[str, Any]:
    """A core block as the API returns it."""
    body: dict[str, Any] = {
        "label": label,
        "value": value,
        "char_limit": 5000,
        "version": 1,
        "user_id": None,
        "updated_at": NOW,
    }
    return {**body, **changes}


BATCH_ID = uuid.UUID("5f0c0000-0000-4000-8000-000000000004")
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.0}


def batch_body(
    status: str = "running", *, done: int = 0, total: int = 2, **changes: Any
) -> dict[str, Any]:
    """A batch as the API returns it, `done` of its `total` items succeeded."""
    running = total - done if status == "running" else 0
    body: dict[str, Any] = {
        "id": str(BATCH_ID),
        "agent_id": str(AGENT_ID),
        "status": status,
        "concurrency": 4,
        "max_attempts": 2,
        "cancel_requested": False,
        "counts": {
            "pending": 0,
            "queued": 0,
            "running": running,
            "succeeded": done,
            "failed": 0,
            "cancelled": total - done - running,
            "total": total,
        },
        "usage": USAGE,
        "metadata": {},
        "created_at": NOW,
        "finished_at": None if status == "running" else NOW,
    }
    return {**body, **changes}


def result_line(position: int, output: str = "ok", **changes: Any) -> bytes:
    """One line of a batch's results stream."""
    body: dict[str, Any] = {
        "position": position,
        "input": f"item {position}",
        "user_id": None,
        "metadata": {},
        "status": "succeeded",
        "output": output,
        "error": None,
        "usage": USAGE,
        "run_id": str(RUN_ID),
        "attempts": 1,
        "finished_at": NOW,
    }
    return (json.dumps({**body, **changes}) + "\n").encode()


def jsonl_stream(body: Any) -> httpx.Response:
    """A 200 application/x-ndjson response with `body` (bytes or an iterator of them)."""
    return httpx.Response(200, headers={"content-type": "application/x-ndjson"}, content=body)


def session_body(agent_id: uuid.UUID = AGENT_ID, user_id: str | None = None) -> dict[str, Any]:
    """A session as the API returns it."""
    return {
        "id": str(SESSION_ID),
        "agent_id": str(agent_id),
        "user_id": user_id,
        "metadata": {},
        "created_at": NOW,
    }


ERASED_KINDS = (
    "memories",
    "blocks",
    "block_versions",
    "sessions",
    "messages",
    "runs",
    "run_steps",
    "tool_calls",
    "run_events",
    "batch_items",
)


def erased_body(**counts: int) -> dict[str, int]:
    """The `erased` counts of a deletion or an erase: zero for every kind not given."""
    return {kind: counts.get(kind, 0) for kind in ERASED_KINDS}
