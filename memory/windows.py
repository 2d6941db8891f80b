"""Neighbouring turns: the context a memory is indexed with (pure).

A turn such as "Yes, every Sunday!" means little alone; indexed with the turns around it,
both its words (full text, lower weight) and its meaning (a second vector, the mean of the
window's turn embeddings) become findable. docs/memory.md has the measurements behind the
window sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

BEFORE = 2
"""Turns before a memory that join its context."""
AFTER = 2
"""Turns after it (known only when written in the same batch)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Window(Generic[T]):
    """The neighbours of one memory."""

    before: tuple[T, ...]
    """Up to BEFORE earlier turns, oldest first."""
    after: tuple[T, ...]
    """Up to AFTER later turns."""

    @property
    def neighbours(self) -> tuple[T, ...]:
        """Earlier then later turns."""
        return (*self.before, *self.after)


def windows(stored: Sequence[T], batch: Sequence[T]) -> list[Window[T]]:
    """Windows of each turn in `batch`, given the turns already stored before it (oldest
    first) in the same session."""
    sequence = [*stored[-BEFORE:], *batch] if BEFORE else list(batch)
    offset = len(sequence) - len(batch)
    out = []
    for i in range(len(batch)):
        at = offset + i
        out.append(
            Window(
                before=tuple(sequence[max(at - BEFORE, 0) : at]),
                after=tuple(sequence[at + 1 : at + 1 + AFTER]),
            )
        )
    return out


def match_window(
    context: str, before: Sequence[str], after: Sequence[str]
) -> tuple[int, int] | None:
    """Which neighbours a stored context text was joined from: (n, m) when `context` is the
    last n of `before` (the turns stored just before the memory, oldest first) then the first
    m of `after` (those just after it), joined by newlines as the writer joins them; the
    widest such window first. None when no window gives it: the context was the caller's, or
    a neighbour has since been deleted or changed."""
    for n in range(min(BEFORE, len(before)), -1, -1):
        for m in range(min(AFTER, len(after)), -1, -1):
            if n + m and "\n".join([*before[len(before) - n :], *after[:m]]) == context:
                return n, m
    return None
