"""The pure core of the step loop: what to do with one model output.

`decide` looks at the run state and the model's answer and returns a small union; the loop
branches on its type, does the I/O and persists, then calls `advance` for the next state.
Nothing here reads a clock, a database or the network, so the same input always gives the
same decision (which is what lets a redelivered task replay a step).

Order of precedence: a text answer finishes the run; an output that cannot be acted on
(invalid tool calls, or neither text nor calls) is sent back as an error until
`max_invalid_attempts` consecutive ones, then the run fails; a run that would need another
model call after `max_steps` stops with MaxStepsReached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from agents.errors import ToolError
from inference.client.model_client import ChatResult, ToolCallRequest

EMPTY_OUTPUT_MESSAGE = (
    "Your last reply was empty. Answer the user in plain text, or call one of the tools."
)
CUT_OFF_MESSAGE = (
    "Your tool call was cut off at the token limit before it was complete. Call the tool "
    "again with short arguments."
)
SKIPPED_CALL_MESSAGE = (
    "not run: another tool call in the same reply had an error; call it again if still needed"
)


class CallValidator(Protocol):
    """What decide needs of the agent's tools (a ToolRegistry fits)."""

    def validate(self, name: str, arguments: str) -> Mapping[str, Any]:
        """Parsed arguments; raises ToolError (UnknownTool, InvalidToolArguments)."""
        ...


@dataclass(frozen=True)
class RunState:
    """The counters decide needs; the loop keeps and persists them."""

    step: int
    """1-based number of the step whose model output is being decided."""
    max_steps: int
    """Most model calls a run may make."""
    invalid_attempts: int = 0
    """Consecutive outputs before this one that could not be acted on."""
    max_invalid_attempts: int = 3
    """How many consecutive unusable outputs are answered with an error; one more fails."""
    tool_required: bool = False
    """This step's request demanded a tool call (tool_choice `required`)."""

    def __post_init__(self) -> None:
        if self.step < 1 or self.max_steps < 1:
            raise ValueError("step and max_steps start at 1")
        if self.invalid_attempts < 0 or self.max_invalid_attempts < 0:
            raise ValueError("attempt counts cannot be negative")


@dataclass(frozen=True)
class FinalAnswer:
    """The model answered in text: the run is done."""

    text: str
    """The answer, surrounding whitespace removed."""
    truncated: bool = False
    """The model hit its token limit, so the answer may be cut short."""


@dataclass(frozen=True)
class RunTools:
    """Every tool call is valid: run them all, then call the model again."""

    calls: tuple[ToolCallRequest, ...]
    """In the model's order."""


@dataclass(frozen=True)
class CallError:
    """The error result to send back for one tool call instead of running it."""

    call: ToolCallRequest
    """The call being answered."""
    message: str
    """The tool error the model will read (bounded)."""


@dataclass(frozen=True)
class ToolArgumentError:
    """Some call named an unknown tool or had invalid arguments: answer every call with an
    error and let the model try again. The reply's calls run all or none, so a valid call
    beside an invalid one is answered with SKIPPED_CALL_MESSAGE."""

    errors: tuple[CallError, ...]
    """One per tool call of the output, in its order."""
    attempt: int
    """How many consecutive unusable outputs this makes."""


@dataclass(frozen=True)
class EmptyOutput:
    """The model returned neither text nor tool calls (or a required tool call was cut off):
    tell it so and try again."""

    attempt: int
    """How many consecutive unusable outputs this makes."""
    message: str = EMPTY_OUTPUT_MESSAGE
    """What to add to the conversation before the retry."""


@dataclass(frozen=True)
class MaxStepsReached:
    """The run needs another model call but has used all its steps."""

    steps: int
    """Steps taken."""


@dataclass(frozen=True)
class Failed:
    """The model kept producing output that cannot be used."""

    reason: str
    """Why, for the run's error field."""


Decision = FinalAnswer | RunTools | ToolArgumentError | EmptyOutput | MaxStepsReached | Failed


def decide(state: RunState, output: ChatResult, tools: CallValidator) -> Decision:
    """The next step for this model output."""
    attempt = state.invalid_attempts + 1
    if not output.tool_calls:
        text = (output.content or "").strip()
        if state.tool_required and output.finish_reason == "length":
            # Constrained decoding guarantees a call unless the token limit cut it short.
            cut = EmptyOutput(attempt, CUT_OFF_MESSAGE)
            return _retry(state, cut, "the tool call was cut off at the token limit")
        if text:
            return FinalAnswer(text, truncated=output.finish_reason == "length")
        return _retry(state, EmptyOutput(attempt), "the model returned an empty reply")
    problems = [_problem(call, tools) for call in output.tool_calls]
    if not any(problems):
        if state.step >= state.max_steps:
            return MaxStepsReached(state.step)
        return RunTools(tuple(output.tool_calls))
    errors = tuple(
        CallError(call, problem or SKIPPED_CALL_MESSAGE)
        for call, problem in zip(output.tool_calls, problems, strict=True)
    )
    first = next(problem for problem in problems if problem)
    return _retry(state, ToolArgumentError(errors, attempt), f"invalid tool call: {first}")


def _problem(call: ToolCallRequest, tools: CallValidator) -> str | None:
    try:
        tools.validate(call.name, call.arguments)
    except ToolError as exc:
        return exc.message
    return None


def _retry(state: RunState, decision: ToolArgumentError | EmptyOutput, last: str) -> Decision:
    if decision.attempt > state.max_invalid_attempts:
        return Failed(f"{decision.attempt} unusable model outputs in a row; the last: {last}")
    if state.step >= state.max_steps:
        return MaxStepsReached(state.step)
    return decision


def advance(state: RunState, decision: Decision) -> RunState:
    """The state for the next model call after the loop has carried out `decision`."""
    if isinstance(decision, RunTools):
        return replace(state, step=state.step + 1, invalid_attempts=0)
    if isinstance(decision, ToolArgumentError | EmptyOutput):
        return replace(state, step=state.step + 1, invalid_attempts=decision.attempt)
    raise ValueError(f"{type(decision).__name__} ends the run; there is no next step")
