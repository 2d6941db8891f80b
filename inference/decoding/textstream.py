"""Turning sampled token bytes into text deltas: whole UTF-8 characters, stop sequences cut."""

from __future__ import annotations

import codecs


class TextAssembler:
    """Feed token bytes; get text that is safe to emit; learn when a stop sequence appeared.

    Text that might be the beginning of a stop sequence is held back until it is known not to
    be one, so a stop sequence never reaches the client, even split across tokens.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = stops
        self._held = ""
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Add a token's bytes; return the text now safe to emit (may be empty)."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(data)
        if not self._stops:
            out, self._held = self._held, ""
            return out
        first = min(
            (i for i in (self._held.find(stop) for stop in self._stops) if i >= 0), default=-1
        )
        if first >= 0:
            self.stopped = True
            out, self._held = self._held[:first], ""
            return out
        keep = _longest_stop_prefix_suffix(self._held, self._stops)
        cut = len(self._held) - keep
        out, self._held = self._held[:cut], self._held[cut:]
        return out

    def flush(self) -> str:
        """At the end of generation: everything still held (no stop sequence completed)."""
        if self.stopped:
            return ""
        out = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        return out


def _longest_stop_prefix_suffix(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a stop sequence."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:size]):
                best = size
                break
    return best
