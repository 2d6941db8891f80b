"""POST /tokenize: prompts counted with the model's own tokenizer, in vLLM's shape.

    {"model"?, "messages": [...], "add_generation_prompt"?: true}
        a chat, rendered with the chat template exactly as /v1/chat/completions renders it
    {"model"?, "prompt": "text"}
        text, tokenized as a completion's rendered prompt is
    -> {"count": N, "max_model_len": window, "tokens": [ids]}

`count` is the `usage.prompt_tokens` a completion of the same messages reports. `model` may
be left out (vLLM's rule: the served model). agentmill adds a batch form, so that a caller
counting many prompts (the agents' context builder: every history message) pays one round trip:

    {"model"?, "items": [{"messages": [...]}, {"prompt": "..."}, ...]}
    -> {"count": total, "max_model_len": window, "items": [{"count": n, "tokens": [ids]}, ...]}

Tools are not rendered here: a body with `tools` is refused (422) rather than counted without
them. vLLM's other options (`add_special_tokens`, `return_token_strs`, ...) are ignored: tokens
are always those a completion would see.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import UserError
from inference.engines.base import Engine
from inference.errors import PromptError
from inference.server.chat_template import ChatTemplate
from inference.wire import Message

MAX_TOKENIZE_ITEMS = 2048


class _Prompt(BaseModel):
    """What one count is of: `messages` (a chat) or `prompt` (text)."""

    model_config = ConfigDict(extra="ignore")  # vLLM's options we do not honour (see above)

    messages: list[Message] | None = Field(default=None, min_length=1)
    prompt: str | None = None
    add_generation_prompt: bool = True
    """Count the opening of the assistant's reply, as a completion's prompt holds it."""
    tools: list[Any] | None = None

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("/tokenize does not render tools; count the messages without them")
        return value

    def _given(self) -> list[str]:
        return [name for name in ("messages", "prompt") if getattr(self, name) is not None]


class TokenizeItem(_Prompt):
    """One entry of `items`."""

    @model_validator(mode="after")
    def _one_kind(self) -> TokenizeItem:
        if len(self._given()) != 1:
            raise ValueError("each item needs exactly one of messages or prompt")
        return self


class TokenizeRequest(_Prompt):
    """POST /tokenize."""

    model: str | None = None
    items: list[TokenizeItem] | None = Field(
        default=None, min_length=1, max_length=MAX_TOKENIZE_ITEMS
    )

    @model_validator(mode="after")
    def _one_kind(self) -> TokenizeRequest:
        given = self._given() + (["items"] if self.items is not None else [])
        if len(given) != 1:
            raise ValueError("give exactly one of messages, prompt or items")
        return self


def tokenize(body: TokenizeRequest, engine: Engine, template: ChatTemplate) -> dict[str, Any]:
    """The response to `body` (CPU work: call it off the event loop)."""
    window = engine.context_tokens
    if body.items is None:
        tokens = _tokens(body, engine, template)
        return {"count": len(tokens), "max_model_len": window, "tokens": tokens}
    counted = [_tokens(item, engine, template) for item in body.items]
    return {
        "count": sum(len(tokens) for tokens in counted),
        "max_model_len": window,
        "items": [{"count": len(tokens), "tokens": tokens} for tokens in counted],
    }


def _tokens(item: _Prompt, engine: Engine, template: ChatTemplate) -> list[int]:
    if item.prompt is not None:
        return engine.tokenize(item.prompt)
    assert item.messages is not None  # checked by the request's validator
    try:
        prompt = template.render(
            item.messages, [], None, add_generation_prompt=item.add_generation_prompt
        )
    except PromptError as exc:
        raise UserError(str(exc), param="messages") from None
    return engine.tokenize(prompt)
