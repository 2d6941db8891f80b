"""What agents send to a model and get back: plain data, no provider library imported.

`inference.client.RouterClient` implements `ModelClient` over litellm;
`inference.testing.ScriptedModel` is the fake for unit tests of branching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """What an agent step asks of a model (OpenAI message and tool dicts)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ToolCallRequest:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one call; cost is 0 for local models."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class ChatResult:
    """A model's answer."""

    content: str | None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    finish_reason: str = "stop"
    model: str = ""
    usage: Usage = field(default_factory=Usage)


DeltaSink = Callable[[str], None]
"""Receives the text of an answer as it is generated (called on the client's event loop)."""


class ModelClient(Protocol):
    """What the agents need from a model client."""

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        """One chat completion; with `on_delta`, streamed, each piece of content passed to it."""
        ...
