"""Typed run events."""

from __future__ import annotations

import json
import uuid

import pytest
from agentmill.events import (
    MessageDeltaEvent,
    RunFinishedEvent,
    ToolCallEvent,
    UnknownEvent,
    parse_event,
)
from pydantic import ValidationError

RUN = str(uuid.uuid4())


def data(**fields: object) -> str:
    return json.dumps({"run_id": RUN, **fields})


def test_known_types_become_their_models() -> None:
    delta = parse_event(4, "message.delta", data(step=1, attempt=1, delta="Hi"))
    assert isinstance(delta, MessageDeltaEvent)
    assert (delta.id, delta.delta, str(delta.run_id)) == (4, "Hi", RUN)
    call = parse_event(5, "tool.call", data(step=1, call_id="c1", name="calc", arguments="{}"))
    assert isinstance(call, ToolCallEvent)
    assert not call.terminal


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "incomplete"])
def test_every_final_type_is_a_finished_event(status: str) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "cost_usd": 0.0}
    error = {"type": "model_error", "message": "x"} if status == "failed" else None
    fields = {"status": status, "stop_reason": "answer", "steps": 1, "usage": usage}
    event = parse_event(9, f"run.{status}", data(**fields, error=error))
    assert isinstance(event, RunFinishedEvent)
    assert event.terminal
    assert event.usage.completion_tokens == 2
    assert event.error == error


def test_an_unknown_type_keeps_its_data() -> None:
    event = parse_event(7, "memory.saved", data(memory_id="m1"))
    assert isinstance(event, UnknownEvent)
    assert event.type == "memory.saved"
    assert event.data == {"run_id": RUN, "memory_id": "m1"}
    assert not event.terminal


def test_a_known_type_with_a_wrong_shape_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_event(4, "message.delta", data(step=1))
