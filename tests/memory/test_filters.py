"""Filter parsing: typed, strict."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from memory.errors import InvalidMemoryInput, UnknownFilterField
from memory.filters import MemoryFilter


def test_parse_accepts_loose_types() -> None:
    agent = uuid.uuid4()
    flt = MemoryFilter.parse(
        {
            "agent_id": str(agent),
            "user_id": 42,
            "kind": "fact",
            "created_after": "2024-01-01T00:00:00+00:00",
            "metadata": {"topic": "pets"},
            "session_id": None,
        }
    )
    assert flt.agent_id == agent
    assert flt.user_id == "42"
    assert flt.kinds == ("fact",)
    assert flt.created_after == datetime(2024, 1, 1, tzinfo=UTC)
    assert flt.metadata == {"topic": "pets"}
    assert flt.session_id is None


def test_unknown_field_is_an_error_naming_the_field() -> None:
    with pytest.raises(UnknownFilterField, match="'colour'") as info:
        MemoryFilter.parse({"colour": "red"})
    assert info.value.param == "colour"
    assert "user_id" in info.value.allowed


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"agent_id": "not-a-uuid"}, "agent_id"),
        ({"created_before": "yesterday"}, "created_before"),
        ({"created_after": "2024-01-01T00:00:00"}, "created_after"),
        ({"kind": "dream"}, "kind"),
        ({"metadata": "topic=pets"}, "metadata"),
    ],
)
def test_bad_values_are_refused(raw: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidMemoryInput) as info:
        MemoryFilter.parse(raw)
    assert info.value.param == param
