"""Turning OpenAI messages into the model's prompt text with the model's own chat template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inference.decoding.constraints import OutputConstraint, render_tool_calls, tools_prompt
from inference.errors import PromptError
from inference.wire import Message, Tool

# Used when a model ships no template (ChatML, what SmolLM2 and many small models use).
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class ChatTemplate:
    """A compiled chat template and the special tokens it may refer to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""

    def __post_init__(self) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise PromptError(message)

        env.globals["raise_exception"] = raise_exception
        object.__setattr__(self, "_compiled", env.from_string(self.source))

    def render(
        self,
        messages: list[Message],
        tools: list[Tool],
        constraint: OutputConstraint | None,
        *,
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt for the next assistant turn (without its opening when
        `add_generation_prompt` is False: the conversation alone)."""
        plain = _normalise(messages, tools, constraint)
        try:
            rendered: str = self._compiled.render(  # type: ignore[attr-defined]
                messages=plain,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError as exc:
            raise PromptError(f"chat template failed: {exc}") from None
        return rendered


def _normalise(
    messages: list[Message], tools: list[Tool], constraint: OutputConstraint | None
) -> list[dict[str, Any]]:
    """Map roles and tool traffic onto system/user/assistant text every template accepts."""
    out: list[dict[str, Any]] = []
    system_parts = [m.text() for m in messages if m.role in ("system", "developer")]
    if tools:
        system_parts.append(tools_prompt(tools, constraint))
    if system_parts:
        out.append({"role": "system", "content": "\n\n".join(system_parts)})
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        if message.role == "assistant":
            made = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
            calls = render_tool_calls(made) if made else ""
            out.append({"role": "assistant", "content": message.text() + calls})
        elif message.role == "tool":
            out.append(
                {
                    "role": "user",
                    "content": f"[result of call {message.tool_call_id}]\n{message.text()}",
                }
            )
        else:
            out.append({"role": "user", "content": message.text()})
    return out
