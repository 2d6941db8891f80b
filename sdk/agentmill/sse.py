"""The Server-Sent Events wire format, decoded line by line (no I/O).

Follows the WHATWG rules that matter here: `field: value` lines (one space after the colon is
dropped), several `data` lines joined by newlines, comment lines starting with `:` ignored, an
event dispatched at a blank line. An event cut off by a dropped connection is never
dispatched, so a reconnect resumes after the last complete one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched SSE message."""

    event: str
    """The `event` field; "message" when absent (the SSE default)."""
    data: str
    """The `data` lines joined by newlines."""
    id: str | None
    """The `id` field of this message, if it had one."""


@dataclass
class SSEDecoder:
    """Feed it lines (without their line ending); it returns an event at each blank line."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        """The event completed by `line`, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None  # `retry` and unknown fields are ignored

    def _dispatch(self) -> ServerSentEvent | None:
        event, data, id_ = self._event, self._data, self._id
        self._event, self._data, self._id = "", [], None
        if not data:
            return None
        return ServerSentEvent(event=event or "message", data="\n".join(data), id=id_)
