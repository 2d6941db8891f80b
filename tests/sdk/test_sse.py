"""The SSE decoder."""

from __future__ import annotations

from agentmill.sse import ServerSentEvent, SSEDecoder


def decode(text: str) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [decoder.decode(line) for line in text.splitlines()]
    return [event for event in events if event is not None]


def test_events_with_ids_types_and_data() -> None:
    text = 'id: 1\nevent: run.queued\ndata: {"a":1}\n\nid: 2\nevent: message\ndata: x\n\n'
    assert decode(text) == [
        ServerSentEvent(event="run.queued", data='{"a":1}', id="1"),
        ServerSentEvent(event="message", data="x", id="2"),
    ]


def test_comments_keepalives_and_unknown_fields_are_skipped() -> None:
    text = ": keepalive\n\nretry: 10\nfoo: bar\nid: 3\ndata: y\n\n: keepalive\n\n"
    assert decode(text) == [ServerSentEvent(event="message", data="y", id="3")]


def test_multi_line_data_is_joined_and_one_space_is_dropped() -> None:
    assert decode("data:  a\ndata:b\n\n") == [ServerSentEvent("message", " a\nb", None)]


def test_an_event_cut_off_before_its_blank_line_is_not_dispatched() -> None:
    assert decode("id: 1\nevent: message.delta\ndata: {}") == []


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode("id: 4\nevent: ping\n\n") == []
