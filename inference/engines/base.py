"""The small interface every engine implements, and the data that crosses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from inference.decoding.constraints import OutputConstraint


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens; temperature 0 means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    """One completion: a rendered prompt, sampling, and an optional output constraint."""

    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    constraint: OutputConstraint | None = None


@dataclass(frozen=True)
class TextDelta:
    """Newly generated text (whole UTF-8 characters, stop sequences already cut)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a generation, with its token accounting."""

    reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    time_to_first_token_s: float = 0.0


GenerationEvent = TextDelta | Finished


@dataclass(frozen=True)
class EngineStats:
    """Counters an engine keeps for /metrics."""

    waiting: int
    running: int
    slots: int
    prompt_tokens_sent: int
    prompt_tokens_evaluated: int
    alive: bool = True
    """The engine's worker is running (False once it has stopped, by close or by a fault)."""


class Engine(Protocol):
    """A model behind a queue: many concurrent generations, each one an async stream.

    Closing the stream early (a client that went away) cancels the generation and frees its
    slot at once. `generate` raises `Overloaded` when the queue is full and `PromptTooLong`
    when the prompt does not fit, before yielding anything.
    """

    model_id: str
    context_tokens: int

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` exactly as `generate` tokenizes a prompt (special tokens parsed),
        so their number is the prompt_tokens a generation of it reports."""
        ...

    def chat_template(self) -> str | None:
        """The model's own chat template (Jinja), if it ships one."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Stream the generation's text, then one `Finished`."""
        ...

    def stats(self) -> EngineStats:
        """Current queue and cache counters."""
        ...

    def close(self) -> None:
        """Stop the engine's worker and free the model."""
        ...
