"""Token ids to text for the transformers engine, a few characters at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas of whole characters.

    Decoding each new token alone breaks words (SentencePiece drops the leading space) and
    multi-byte characters split over tokens, so it decodes a short window that starts a few
    tokens back and emits what the window gained (the offsets scheme vLLM and TGI use).
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode_ids = decode
        self._ids: list[int] = []
        self._prefix = 0  # window start
        self._read = 0  # ids already turned into emitted text

    def push(self, token_ids: Sequence[int]) -> str:
        """Add generated ids; return the new text they complete (maybe empty)."""
        self._ids.extend(token_ids)
        before = self._decode(self._prefix, self._read)
        after = self._decode(self._prefix, len(self._ids))
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""  # an incomplete UTF-8 sequence: wait for the next token
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before) :]

    def flush(self) -> str:
        """Text still held back at the end of the generation, less any broken last character."""
        before = self._decode(self._prefix, self._read)
        after = self._decode(self._prefix, len(self._ids)).rstrip("\ufffd")
        self._prefix = self._read = len(self._ids)
        return after[len(before) :] if len(after) > len(before) else ""

    def _decode(self, start: int, end: int) -> str:
        return self._decode_ids(self._ids[start:end])
