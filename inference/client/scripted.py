"""`ScriptedModel`: an honest fake of the `ModelClient` protocol, for unit tests of branching.

It answers from a script (results, or exceptions to raise), records a copy of every request,
and fails loudly when the script runs out. It is never a default anywhere: tests that a feature
works use the real bundled model through the real inference server.

Token counts follow a fixed rule, `scripted_tokens`: 4 per message plus one per 4 characters
(rounded up) of its content and tool calls' JSON, plus 2 for the opening of the reply. The
counts of a conversation's messages therefore add up: what a message adds to any conversation
is the same.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from inference.client.model_client import ChatRequest, ChatResult, DeltaSink, ToolCallRequest


class ScriptExhausted(AssertionError):
    """The code under test called the model more often than the script allows.

    An AssertionError, not an agentmill error, so that no `except AgentmillError` in the code
    under test can turn a broken test into a quietly failed run.
    """

    def __init__(self, calls: int, request: ChatRequest) -> None:
        last = request.messages[-1] if request.messages else {}
        super().__init__(
            f"ScriptedModel: call {calls} has no scripted answer (the script held "
            f"{calls - 1}); last message of the request: {json.dumps(last, default=str)[:300]}"
        )
        self.calls = calls
        self.request = request


class ScriptedModel:
    """Answers `complete` calls from a script, in order."""

    def __init__(
        self,
        script: Iterable[ChatResult | BaseException],
        *,
        count_failures: Iterable[BaseException] = (),
    ) -> None:
        self._script: deque[ChatResult | BaseException] = deque(script)
        self._count_failures: deque[BaseException] = deque(count_failures)
        self.requests: list[ChatRequest] = []
        """Deep copies of the requests received, in order (later mutation cannot alter them)."""
        self.counted: list[tuple[str, list[list[dict[str, Any]]]]] = []
        """(model, deep copies of the prompts) of every `count_tokens` call, in order."""

    @property
    def remaining(self) -> int:
        """Scripted answers not used yet."""
        return len(self._script)

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        """The next scripted result, or raise the next scripted exception; with `on_delta`,
        the content is passed to it word by word first, as a streaming model would."""
        self.requests.append(
            replace(
                request,
                messages=copy.deepcopy(request.messages),
                tools=copy.deepcopy(request.tools),
            )
        )
        if not self._script:
            raise ScriptExhausted(len(self.requests), request)
        answer = self._script.popleft()
        if isinstance(answer, BaseException):
            raise answer
        if on_delta is not None and answer.content:
            for piece in re.findall(r"\S+\s*|\s+", answer.content):
                on_delta(piece)
        return answer

    async def count_tokens(self, model: str, prompts: Sequence[list[dict[str, Any]]]) -> list[int]:
        """`scripted_tokens` of each prompt, after raising the `count_failures` one per call."""
        self.counted.append((model, copy.deepcopy(list(prompts))))
        if self._count_failures:
            raise self._count_failures.popleft()
        return [scripted_tokens(messages) for messages in prompts]


def scripted_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """The fake's token count of one prompt (the rule in the module docstring)."""
    total = 2
    for message in messages:
        text = message.get("content") or ""
        if message.get("tool_calls"):
            text += json.dumps(message["tool_calls"])
        total += 4 + math.ceil(len(text) / 4)
    return total


def text_reply(content: str, *, finish_reason: str = "stop") -> ChatResult:
    """A scripted plain-text answer."""
    return ChatResult(content=content, finish_reason=finish_reason, model="scripted")


def tool_calls_reply(*calls: tuple[str, Mapping[str, Any] | str]) -> ChatResult:
    """A scripted answer calling tools: (name, arguments as a dict or raw JSON text) each.

    Ids are call_1, call_2, ... in order, so tests can refer to them.
    """
    requests = [
        ToolCallRequest(
            id=f"call_{index}",
            name=name,
            arguments=arguments if isinstance(arguments, str) else json.dumps(dict(arguments)),
        )
        for index, (name, arguments) in enumerate(calls, start=1)
    ]
    return ChatResult(
        content=None, tool_calls=requests, finish_reason="tool_calls", model="scripted"
    )
