"""The agents layer's plain data: an agent's fields are listed once, in NewAgent."""

from __future__ import annotations

import dataclasses

import pytest

from agents.records import UNSET, Agent, AgentChanges, MemoryPolicy, NewAgent


def _names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_a_change_names_exactly_the_fields_of_a_new_agent() -> None:
    assert _names(AgentChanges) == _names(NewAgent)


def test_an_agent_is_a_new_agent_with_key_owner_and_times() -> None:
    extra = set(_names(Agent)) - set(_names(NewAgent))
    assert extra == {"id", "tenant_id", "created_at", "updated_at"}
    assert issubclass(Agent, NewAgent)


def test_sent_lists_only_what_changes_and_none_is_a_value() -> None:
    assert AgentChanges().sent() == {}
    changes = AgentChanges(temperature=None, memory=MemoryPolicy(recall_k=0))
    assert changes.sent() == {"temperature": None, "memory": MemoryPolicy(recall_k=0)}
    assert changes.name is UNSET


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        NewAgent("helper", "local", 3)  # type: ignore[call-arg]
