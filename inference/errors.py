"""Errors of the inference layer.

AgentmillError
 ├── TooManyRequests ── Overloaded      the request queue is full (429)
 ├── UserError ──────── PromptTooLong   prompt tokens exceed the context window (400)
 ├── NotFound ───────── UnknownModel    no such model (404)
 ├── OutputInvalid                      a constrained output failed validation (500; the
 │                                      llama.cpp engine's grammar makes this impossible)
 ├── PromptError (also ValueError)      the messages cannot be rendered with the model's
 │                                      chat template (the server answers 400)
 ├── SchemaError (also ValueError)      a JSON schema that is not valid, or a document that
 │                                      does not match one (a ValueError, so request models
 │                                      turn it into a validation error)
 ├── EngineFailed                       the engine's worker failed a generation or stopped
 └── EngineCheckFailed                  the engine could not decode at start-up (the server
                                        exits with this one-line message)
"""

from __future__ import annotations

from core.errors import AgentmillError, NotFound, TooManyRequests, UserError


class Overloaded(TooManyRequests):
    """Too many requests are waiting; the client should retry later."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"server busy: {waiting} requests already waiting; retry later")
        self.waiting = waiting


class PromptTooLong(UserError):
    """The prompt does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, context_tokens: int) -> None:
        super().__init__(
            f"prompt is {prompt_tokens} tokens; this model's context window is {context_tokens} "
            "tokens (prompt plus at least one generated token)",
            param="messages",
        )
        self.prompt_tokens = prompt_tokens
        self.context_tokens = context_tokens


class UnknownModel(NotFound):
    """The requested model is not served here."""

    def __init__(self, model: str, available: list[str]) -> None:
        super().__init__("model", model)
        self.message = f"model {model!r} not found; available: {', '.join(available)}"
        self.args = (self.message,)
        self.param = "model"


class OutputInvalid(AgentmillError):
    """The model's output did not satisfy the requested format."""


class EngineFailed(AgentmillError):
    """The engine's worker failed a generation, or stopped under it."""


class EngineCheckFailed(AgentmillError):
    """The engine could not decode its first tokens at start-up; the message says why and how
    to fix it."""


class PromptError(AgentmillError, ValueError):
    """The messages cannot be rendered with this model's template."""


class SchemaError(AgentmillError, ValueError):
    """A JSON schema that is not valid, or a document that does not match one."""
