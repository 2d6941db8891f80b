"""The server's run events and the SDK's typed events stay in step: the same types, the same
fields (required where the server always sends them), and every payload the server writes
parses into its own SDK model (not `UnknownEvent`) with its values intact."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from agentmill.events import EVENT_MODELS as SDK_MODELS
from agentmill.events import EVENT_TYPES as SDK_TYPES
from agentmill.events import TERMINAL_TYPES as SDK_TERMINAL
from agentmill.events import UnknownEvent, parse_event

from agents.records import PendingCall, Usage
from agents.runs.events import (
    EVENT_DATA,
    EVENT_TYPES,
    TERMINAL_TYPES,
    Answer,
    EventData,
    MessageDelta,
    RunFinished,
    RunQueued,
    RunReleased,
    RunRequiresAction,
    RunStarted,
    RunWaiting,
    StepStarted,
    ToolApproval,
    ToolCalled,
    ToolFinished,
    ToolSourceError,
    event_fields,
    event_json,
)

SDK_BASE = {"id", "type"}
"""Fields of every SDK event that are not the data's: the SSE id and event name."""


def test_the_sdk_types_every_server_event_and_no_other() -> None:
    assert set(SDK_TYPES) == set(EVENT_TYPES)
    assert set(SDK_TERMINAL) == set(TERMINAL_TYPES)


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_each_type_has_the_same_fields_on_both_sides(kind: str) -> None:
    server = {f.name: f for f in dataclasses.fields(EVENT_DATA[kind])}
    sdk = {n: f for n, f in SDK_MODELS[kind].model_fields.items() if n not in SDK_BASE}
    assert set(sdk) == {"run_id", *server}
    for name, field in server.items():
        always_sent = field.default is dataclasses.MISSING and field.default_factory is (
            dataclasses.MISSING
        )
        assert sdk[name].is_required() == always_sent, name


_USAGE = Usage(prompt_tokens=3, completion_tokens=2, cost_usd=0.25)
_ERROR = {"type": "model_error", "message": "m"}
SAMPLES: list[EventData] = [
    RunQueued(session_id=str(uuid.uuid4())),
    RunQueued(session_id=str(uuid.uuid4()), previous_run_id=str(uuid.uuid4())),
    RunStarted(attempt=1),
    StepStarted(step=1, attempt=2),
    MessageDelta(step=1, attempt=1, delta="Hel"),
    ToolCalled(step=1, call_id="c1", name="calculator", arguments='{"x": 1}'),
    ToolFinished(step=1, call_id="c1", result="2", is_error=False),
    Answer(message_id=str(uuid.uuid4()), content="Hello"),
    RunWaiting(reason="model_down", message="m", retry_in_s=1.5, attempt=1),
    RunReleased(reason="model_down", message="m", attempt=1),
    RunRequiresAction(
        step=2,
        calls=[PendingCall("c1", "transfer", '{"amount": 5}', {"type": "object"})],
        expires_at="2026-12-07T10:00:00+00:00",
    ),
    ToolApproval(step=2, call_id="c1", decision="approve"),
    ToolSourceError(server="weather", message="cannot list the tools: timed out"),
    ToolApproval(step=2, call_id="c1", decision="edit", arguments='{"amount": 1}', message="m"),
    ToolApproval(step=2, call_id="c1", decision="deny", message="expired", expired=True),
    RunFinished(status="succeeded", stop_reason="answer", steps=1, usage=_USAGE),
    RunFinished(status="failed", stop_reason="error", steps=2, usage=_USAGE, error=_ERROR),
    RunFinished(status="cancelled", stop_reason="cancelled", steps=0, usage=_USAGE),
    RunFinished(status="incomplete", stop_reason="max_steps", steps=8, usage=_USAGE),
]


def test_the_samples_cover_every_type() -> None:
    assert {sample.TYPE for sample in SAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: d.TYPE)
def test_each_payload_as_stored_parses_into_its_model_with_its_values(data: EventData) -> None:
    run_id = uuid.uuid4()
    stored = event_json(run_id, data)
    event = parse_event(7, data.TYPE, stored)
    assert not isinstance(event, UnknownEvent)
    assert (event.id, event.type, event.run_id) == (7, data.TYPE, run_id)
    assert event.terminal == (data.TYPE in TERMINAL_TYPES)
    parsed = event.model_dump(mode="json", exclude=SDK_BASE | {"run_id"}, exclude_none=True)
    assert parsed == event_fields(data)  # every field, nested usage included
    assert json.loads(stored) == {"run_id": str(run_id), **event_fields(data)}
