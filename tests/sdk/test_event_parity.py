"""The server's run event types and the SDK's typed events stay in step: every type a run can
emit parses into its own SDK model (not `UnknownEvent`), and the SDK knows no type the server
never sends."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from agentmill.events import EVENT_TYPES as SDK_TYPES
from agentmill.events import TERMINAL_TYPES as SDK_TERMINAL
from agentmill.events import UnknownEvent, parse_event

from agents.runs.events import EVENT_TYPES, TERMINAL_TYPES, append_event


def test_the_sdk_types_every_server_event_and_no_other() -> None:
    assert set(SDK_TYPES) == set(EVENT_TYPES)
    assert set(SDK_TERMINAL) == set(TERMINAL_TYPES)


# One real payload per type, as the server writes it (agents/runs/*.py, docs/agents.md).
_USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.0}
_FINAL = {"status": "x", "stop_reason": "answer", "steps": 1, "usage": _USAGE, "error": None}
PAYLOADS: dict[str, dict[str, Any]] = {
    "run.queued": {"session_id": str(uuid.uuid4())},
    "run.started": {"attempt": 1},
    "step.started": {"step": 0, "attempt": 1},
    "message.delta": {"step": 0, "attempt": 1, "delta": "Hel"},
    "tool.call": {"step": 0, "call_id": "c1", "name": "calculator", "arguments": '{"x": 1}'},
    "tool.result": {"step": 0, "call_id": "c1", "result": "2", "is_error": False},
    "message": {"message_id": str(uuid.uuid4()), "content": "Hello"},
    "run.waiting": {"reason": "model_down", "message": "m", "retry_in_s": 1.5, "attempt": 1},
    "run.released": {"reason": "model_down", "message": "m", "attempt": 1},
    **{kind: {**_FINAL, "status": kind.removeprefix("run.")} for kind in TERMINAL_TYPES},
}


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_each_server_event_parses_into_its_typed_model(kind: str) -> None:
    data = json.dumps({"run_id": str(uuid.uuid4()), **PAYLOADS[kind]})
    event = parse_event(7, kind, data)
    assert not isinstance(event, UnknownEvent)
    assert event.type == kind
    assert event.terminal == (kind in TERMINAL_TYPES)


def test_the_server_refuses_an_event_type_outside_the_list() -> None:
    with pytest.raises(ValueError, match="unknown run event type"):
        append_event(None, uuid.uuid4(), uuid.uuid4(), "run.exploded", {})  # type: ignore[arg-type]
