"""The OpenAI wire format the server speaks: request bodies validated at the edge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inference.decoding.schema import check_schema
from inference.errors import SchemaError


def _schema(value: dict[str, Any]) -> dict[str, Any]:
    """Pydantic validator: `value` must be a valid JSON schema."""
    try:
        check_schema(value)
    except SchemaError as exc:
        raise ValueError(str(exc)) from None
    return value


class _Open(BaseModel):
    # Unknown fields (OpenAI adds them often) are accepted and ignored, as OpenAI's server does.
    model_config = ConfigDict(extra="ignore")


class FunctionCall(_Open):
    """A tool call's function: its name and JSON-encoded arguments."""

    name: str
    arguments: str


class ToolCall(_Open):
    """A tool call the assistant made in an earlier turn."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ContentPart(_Open):
    """One part of a multi-part message; only text parts are supported."""

    type: Literal["text"]
    text: str


class Message(_Open):
    """One chat message."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        return self

    def text(self) -> str:
        """The content as plain text."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionDef(_Open):
    """A function the model may call; `parameters` is a JSON schema."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    _valid_schema = field_validator("parameters")(_schema)


class Tool(_Open):
    """A tool offered to the model."""

    type: Literal["function"] = "function"
    function: FunctionDef


class NamedFunction(_Open):
    """`{"name": ...}` inside a named tool_choice."""

    name: str


class NamedToolChoice(_Open):
    """`tool_choice: {"type": "function", "function": {"name": ...}}`."""

    type: Literal["function"] = "function"
    function: NamedFunction


class JsonSchemaSpec(_Open):
    """The `json_schema` member of `response_format`."""

    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None

    _valid_schema = field_validator("schema_")(_schema)


class ResponseFormat(_Open):
    """`response_format`: free text, any JSON object, or JSON matching a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format type json_schema needs a json_schema member")
        return self


class StreamOptions(_Open):
    """`stream_options`."""

    include_usage: bool = False


class ChatCompletionRequest(_Open):
    """POST /v1/chat/completions."""

    model: str
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    n: int = Field(default=1, ge=1, le=1)
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else (value or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must not be empty")
        return value

    @model_validator(mode="after")
    def _tool_choice_consistent(self) -> ChatCompletionRequest:
        choice = self.tool_choice
        if choice not in (None, "none", "auto") and not self.tools:
            raise ValueError("tool_choice requires tools")
        if isinstance(choice, NamedToolChoice):
            names = {tool.function.name for tool in self.tools or []}
            if choice.function.name not in names:
                raise ValueError(f"tool_choice names unknown function {choice.function.name!r}")
        if self.tools and self.response_format and self.response_format.type != "text":
            raise ValueError("use either tools or a JSON response_format, not both")
        return self

    def stop_list(self) -> list[str]:
        """The stop sequences as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def token_limit(self) -> int | None:
        """`max_completion_tokens` (the newer name) or `max_tokens`."""
        return self.max_completion_tokens or self.max_tokens


class EmbeddingRequest(_Open):
    """POST /v1/embeddings."""

    model: str
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)

    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)
