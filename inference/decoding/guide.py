"""One request's constrained decoding: the grammar's token mask, and room kept to close.

A grammar alone guarantees that what is written is a valid *prefix*; with a token budget
(`max_tokens`) a prefix is not enough. The `Guide` keeps the invariant that, after every
token it lets through, the output can still be completed validly within the tokens left: it
asks the `JsonCursor` for the shortest closing text, tokenizes it, and replays it on a copy
of the grammar matcher. A token that would break the invariant is refused (the engine draws
another); when none of a few draws fits, the engine ends the output with the closing, which
is known to fit and to satisfy the grammar. Both engines drive it the same way.

Two more things keep a small model's output useful under a budget: a free-form string or
number may take at most a third of the room left when it began (then the guide draws until a
token ends it, or writes the end itself), so one runaway value cannot starve the fields after
it; and with `tool_choice: auto` an engine may raise the logits of the tokens that open a
`<tool_call>` at the first step (`call_bias`), where a model that rarely starts a call on its
own makes the decision.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from llguidance import LLMatcher, LLTokenizer

from inference.decoding.constraints import TOOL_CLOSE, TOOL_OPEN, OutputConstraint
from inference.decoding.grammar import Grammar
from inference.decoding.json_cursor import JsonCursor

RESAMPLES = 4
"""Draws tried before a guide closes the output (or a runaway value) itself."""
MAX_CLOSINGS_TRIED = 24
VALUE_SHARE = 3
"""A free-form value may use 1/VALUE_SHARE of the room left when it starts ..."""
MIN_VALUE_TOKENS = 12
"""... but never fewer tokens than this."""


def _complete_char(pending: bytes) -> bytes:
    """Continuation bytes that finish the UTF-8 character `pending` starts (a valid one)."""
    lead = pending[0]
    size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    if len(pending) == 1 and lead in (0xE0, 0xF0):
        second = b"\xa0" if lead == 0xE0 else b"\x90"
        return second + b"\x80" * (size - 2)
    return b"\x80" * (size - len(pending))


class _Output:
    """The output so far as the grammar sees it: optional `<tool_call>` framing around JSON."""

    def __init__(self, constraint: OutputConstraint) -> None:
        self.cursor = JsonCursor(constraint.schema)
        self.framed = constraint.kind == "tool_or_text"
        self.mode = "undecided" if self.framed else "json"  # | head | json | tail | text
        self.head = ""
        self.tail = ""
        self.pending = b""
        self.failed = False

    def open_value(self) -> int | None:
        """Where the free-form JSON value being written starts, if one is open."""
        return self.cursor.open_value() if self.mode == "json" else None

    def clone(self) -> _Output:
        twin = _Output.__new__(_Output)
        twin.__dict__.update(self.__dict__)
        twin.cursor = self.cursor.clone()
        return twin

    def feed(self, data: bytes) -> bool:
        """Read a token's bytes; False when the output can no longer be followed."""
        buffer = self.pending + data
        for cut in range(len(buffer), max(-1, len(buffer) - 4), -1):
            try:
                text = buffer[:cut].decode()
            except UnicodeDecodeError:
                continue
            self.pending = buffer[cut:]
            for ch in text:
                self._char(ch)
            return not self.failed
        self.failed = True
        return False

    def _char(self, ch: str) -> None:
        if self.mode == "undecided":
            self.mode = "head" if ch == TOOL_OPEN[0] else "text"
        if self.mode == "head":
            self.head += ch
            self.failed |= not TOOL_OPEN.startswith(self.head)
            if self.head == TOOL_OPEN:
                self.mode = "json"
        elif self.mode == "json":
            if self.cursor.done and self.framed:
                self.mode = "tail"
                self._char(ch)
            else:
                self.failed |= not self.cursor.feed(ch)
        elif self.mode == "tail":
            self.tail += ch
            self.failed |= not TOOL_CLOSE.startswith(self.tail)

    def closings(self) -> Iterator[bytes]:
        """Bytes that may complete the output validly, the likeliest first."""
        if self.failed:
            return
        output, lead = self, b""
        if self.pending:
            lead = _complete_char(self.pending)
            output = self.clone()
            if not output.feed(lead):
                return
        for text in output._closing_texts():
            yield lead + text.encode()

    def _closing_texts(self) -> Iterator[str]:
        if self.mode in ("undecided", "text"):
            yield ""
        elif self.mode == "head":
            body = self.cursor.schemas.minimal(self.cursor.schemas.root)
            if body is not None:
                yield TOOL_OPEN[len(self.head) :] + body + TOOL_CLOSE
        elif self.mode == "tail":
            yield TOOL_CLOSE[len(self.tail) :]
        else:
            for body in self.cursor.closings():
                yield body + TOOL_CLOSE if self.framed else body


@dataclass
class _Candidate:
    token: int
    matcher: LLMatcher
    output: _Output
    closing: list[int]


@lru_cache(maxsize=8)
def _call_openers(tokenizer: LLTokenizer) -> np.ndarray:
    """Tokens whose text starts a `<tool_call>` (or starts with one)."""
    opener = TOOL_OPEN.encode()
    return np.array(
        [
            bool(piece) and (opener.startswith(piece) or piece.startswith(opener))
            for piece in (tokenizer.decode_bytes([t]) for t in range(tokenizer.vocab_size))
        ]
    )


class Guide:
    """The grammar matcher of one output, plus the budget keeper (see the module docstring)."""

    def __init__(
        self,
        grammar: Grammar,
        tokenizer: LLTokenizer,
        budget: int | None = None,
        *,
        call_bias: float = 0.0,
    ) -> None:
        self.matcher = LLMatcher(tokenizer, grammar.text, log_level=0)
        self._tokenizer = tokenizer
        self._eos = frozenset(tokenizer.eos_tokens)
        self._output = _Output(grammar.constraint)
        self._closing: list[int] | None = None
        self._candidate: _Candidate | None = None
        self._value: tuple[int, int, int] | None = None  # (start, tokens so far, token cap)
        self.call_bias = call_bias if grammar.constraint.kind == "tool_or_text" else 0.0
        self.budget: int | None = None
        self.used = 0
        self.shortened = False
        self.forcing: list[int] = []
        if budget is not None:
            self.set_budget(budget)

    @property
    def keeping(self) -> bool:
        """Whether room to close is being kept (the shortest valid output fit the budget)."""
        return self.budget is not None

    @property
    def finished(self) -> bool:
        """The output is complete: the grammar allows nothing but the end."""
        return self.matcher.is_stopped()

    def set_budget(self, budget: int) -> None:
        """Keep room to close within `budget` output tokens, if the shortest output fits."""
        closing = self._verified(self.matcher, self._output, budget - self.used)
        self.budget = budget if closing is not None else None
        self._closing = closing

    def allowed(self) -> np.ndarray:
        """The grammar's mask of allowed next tokens (bool, one per vocabulary entry)."""
        if self.forcing:
            mask = np.zeros(self._tokenizer.vocab_size, dtype=bool)
            mask[self.forcing[0]] = True
            return mask
        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little")[: self._tokenizer.vocab_size].astype(bool)

    def bias(self) -> tuple[np.ndarray, float] | None:
        """Tokens to raise by a logit offset before this draw (the call openers at the start)."""
        if self.used or not self.call_bias:
            return None
        return _call_openers(self._tokenizer), self.call_bias

    def allows(self, token: int) -> bool:
        """Whether `token` keeps the output closable within the budget (and ends a value that
        has used its share)."""
        if self.budget is None or token in self._eos:
            return True
        matcher = self.matcher.deep_copy()
        if not matcher.consume_token(token):
            return False
        output = self._output.clone()
        if not output.feed(self._tokenizer.decode_bytes([token])):
            return False
        if self._over_share() and output.open_value() == self._output.open_value():
            return False
        closing = self._verified(matcher, output, self.budget - self.used - 1)
        if closing is None:
            return False
        self._candidate = _Candidate(token, matcher, output, closing)
        return True

    def pick(self, draw: Callable[[], int], forbid: Callable[[int], None]) -> int | None:
        """Draw until a token is allowed; None when it is time to close the output instead."""
        if self.forcing:
            return self.forcing[0]
        for _ in range(RESAMPLES):
            token = draw()
            if self.allows(token):
                return token
            forbid(token)
        if self._over_share() and self._closing:
            return self._closing[0]  # end the runaway value the way the closing would
        return None

    def accept(self, token: int) -> None:
        """Advance past `token` (one `pick` returned, a forced one, or any if not keeping)."""
        self.used += 1
        candidate, self._candidate = self._candidate, None
        if self.forcing and self.forcing[0] == token:
            self.forcing.pop(0)
        if candidate is not None and candidate.token == token:
            self.matcher, self._output = candidate.matcher, candidate.output
            self._closing = candidate.closing
        else:
            self.matcher.consume_token(token)
            self._output.feed(self._tokenizer.decode_bytes([token]))
            if self._closing and self._closing[0] == token:
                self._closing = self._closing[1:]  # the rest of a closing stays valid
            else:
                self._closing = None
        self._track_value()

    def close(self) -> list[int]:
        """The tokens that end the output validly now, within the budget (queued as `forcing`)."""
        self.shortened = True
        self.forcing = list(self._closing or [])
        return list(self.forcing)

    def _track_value(self) -> None:
        start = self._output.open_value()
        if start is None or self.budget is None:
            self._value = None
        elif self._value is not None and self._value[0] == start:
            self._value = (start, self._value[1] + 1, self._value[2])
        else:
            room = self.budget - self.used - len(self._closing or [])
            self._value = (start, 1, max(MIN_VALUE_TOKENS, room // VALUE_SHARE))

    def _over_share(self) -> bool:
        return self._value is not None and self._value[1] >= self._value[2]

    def _verified(self, matcher: LLMatcher, output: _Output, room: int) -> list[int] | None:
        """The first closing of `output` that fits `room` tokens and the grammar agrees with."""
        for text in itertools.islice(output.closings(), MAX_CLOSINGS_TRIED):
            tokens = self._tokenizer.tokenize_bytes(text) if text else []
            if len(tokens) > room:
                continue
            trial = matcher.deep_copy()
            if trial.try_consume_tokens(tokens) == len(tokens) and trial.is_accepting():
                return tokens
        return None
