"""What agents send to a model and get back: plain data and our own errors, no provider
library imported. Token counts come from the client too, since only it knows the model's
tokenizer.

`inference.client.router.RouterClient` implements `ModelClient` over litellm;
`inference.client.scripted.ScriptedModel` is the fake for unit tests of branching.

AgentmillError
 └── ModelCallError          a model call failed; `message` is fixed per `reason`
      ├── ModelUnavailable   transient: unreachable, timed out, 5xx, rate limited (retry later)
      └── ModelRejected      permanent: the request will never succeed as it is (400s, an
                             unknown model, context too long, bad credentials)

Their messages never carry the provider's text (which names hosts, ports, URLs and sometimes
keys): the original exception is chained as `__cause__`, for the logs only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from core.errors import AgentmillError


@dataclass(frozen=True)
class ChatRequest:
    """What an agent step asks of a model (OpenAI message and tool dicts)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    """Several tool calls in one reply allowed (True), refused (False); None: not sent."""
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


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Tokens and cost of one call, or summed over a step's or a run's calls; cost is 0 for
    local models. Keyword-only: four numbers side by side are easy to swap."""

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


class ModelCallError(AgentmillError):
    """A model call failed; `message` is a fixed sentence for `reason`, safe to show a tenant."""

    MESSAGES: ClassVar[dict[str, str]] = {}

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        if reason not in self.MESSAGES:
            raise ValueError(f"unknown {type(self).__name__} reason {reason!r}")
        self.reason = reason
        self.status = status
        self.message = self.MESSAGES[reason]
        super().__init__(self.message)


class ModelUnavailable(ModelCallError):
    """The model server is down, restarting, slow or overloaded: the same call may succeed
    later. The caller waits and retries."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "unreachable": "the model server could not be reached",
        "timeout": "the model server did not answer in time",
        "server_error": "the model server failed to answer (a server error)",
        "rate_limited": "the model provider is rate limiting requests",
    }


class ModelRejected(ModelCallError):
    """The model refused the request in a way that will not heal by retrying it."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "bad_request": "the model server rejected the request as invalid",
        "context_window": "the conversation no longer fits the model's context window",
        "not_found": "the model server does not know the requested model",
        "authentication": "the model server refused the configured credentials",
        "content_policy": "the model provider refused the request under its content policy",
    }


DeltaSink = Callable[[str], None]
"""Receives the text of an answer as it is generated (called on the client's event loop)."""


class ModelClient(Protocol):
    """What the agents need from a model client.

    A failed call raises `ModelUnavailable` (transient) or `ModelRejected` (permanent), or
    `inference.errors.UnknownModel` for an alias it does not serve; anything else it raises is
    a bug and is treated as one."""

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        """One chat completion; with `on_delta`, streamed, each piece of content passed to it."""
        ...

    async def count_tokens(self, model: str, prompts: Sequence[list[dict[str, Any]]]) -> list[int]:
        """Tokens of each message list as one prompt of the alias `model`, the opening of the
        reply included: the prompt_tokens a completion of it would report (an estimate where
        the model's tokenizer is unknown). All of them in one call: count in batches."""
        ...
