"""decide(): every branch of the step decision, and advance() between steps."""

from __future__ import annotations

import pytest

from agents.runs.decide import (
    CUT_OFF_MESSAGE,
    EMPTY_OUTPUT_MESSAGE,
    SKIPPED_CALL_MESSAGE,
    CallError,
    EmptyOutput,
    Failed,
    FinalAnswer,
    MaxStepsReached,
    RunState,
    RunTools,
    ToolArgumentError,
    advance,
    decide,
)
from agents.tools.builtin import BUILTIN_TOOLS
from agents.tools.registry import ToolRegistry
from inference.client.model_client import ChatResult, ToolCallRequest
from inference.client.scripted import text_reply, tool_calls_reply

TOOLS = ToolRegistry(BUILTIN_TOOLS)
STATE = RunState(step=1, max_steps=5)
CALC = ("calculator", {"expression": "1 + 1"})


def test_text_is_the_final_answer() -> None:
    assert decide(STATE, text_reply("  It is 2.\n"), TOOLS) == FinalAnswer("It is 2.")


def test_text_cut_by_the_token_limit_is_marked_truncated() -> None:
    decision = decide(STATE, text_reply("It is", finish_reason="length"), TOOLS)
    assert decision == FinalAnswer("It is", truncated=True)


def test_a_final_answer_on_the_last_step_still_finishes() -> None:
    assert decide(RunState(step=5, max_steps=5), text_reply("done"), TOOLS) == FinalAnswer("done")


def test_valid_calls_run_in_order() -> None:
    output = tool_calls_reply(CALC, ("current_time", {"timezone": "Europe/Oslo"}))
    decision = decide(STATE, output, TOOLS)
    assert decision == RunTools(tuple(output.tool_calls))
    assert [c.id for c in decision.calls] == ["call_1", "call_2"]


def test_text_beside_tool_calls_does_not_end_the_run() -> None:
    call = ToolCallRequest(id="c1", name="calculator", arguments='{"expression": "2*3"}')
    output = ChatResult(content="Let me compute.", tool_calls=[call])
    assert decide(STATE, output, TOOLS) == RunTools((call,))


def test_unknown_tool_goes_back_to_the_model() -> None:
    output = tool_calls_reply(("get_weather", {"city": "Oslo"}))
    decision = decide(STATE, output, TOOLS)
    assert isinstance(decision, ToolArgumentError)
    assert decision.attempt == 1
    (error,) = decision.errors
    assert error.call == output.tool_calls[0]
    assert error.message == (
        "unknown tool 'get_weather'; available tools: ask_user, calculator, current_time"
    )


def test_invalid_arguments_go_back_and_valid_siblings_are_skipped() -> None:
    output = tool_calls_reply(CALC, ("calculator", '{"expr": 1'), ("current_time", {"tz": "x"}))
    decision = decide(STATE, output, TOOLS)
    assert isinstance(decision, ToolArgumentError)
    first, second, third = decision.errors
    assert first == CallError(output.tool_calls[0], SKIPPED_CALL_MESSAGE)
    assert second.message.startswith("invalid arguments for tool 'calculator': not valid JSON")
    assert third.message.startswith(
        "invalid arguments for tool 'current_time': tz: Extra inputs are not permitted"
    )


def test_empty_output_is_retried() -> None:
    for content in (None, "", "  \n "):
        decision = decide(STATE, ChatResult(content=content), TOOLS)
        assert decision == EmptyOutput(attempt=1)
        assert decision.message == EMPTY_OUTPUT_MESSAGE


def test_unusable_outputs_are_bounded_then_the_run_fails() -> None:
    tired = RunState(step=4, max_steps=10, invalid_attempts=3, max_invalid_attempts=3)
    failed = decide(tired, ChatResult(content=None), TOOLS)
    assert failed == Failed(
        "4 unusable model outputs in a row; the last: the model returned an empty reply"
    )
    bad_call = decide(tired, tool_calls_reply(("nope", {})), TOOLS)
    assert isinstance(bad_call, Failed)
    assert bad_call.reason.endswith(
        "the last: invalid tool call: unknown tool 'nope'; "
        "available tools: ask_user, calculator, current_time"
    )
    just_under = RunState(step=4, max_steps=10, invalid_attempts=2, max_invalid_attempts=3)
    assert decide(just_under, ChatResult(content=None), TOOLS) == EmptyOutput(attempt=3)


def test_zero_tolerance_fails_on_the_first_unusable_output() -> None:
    strict = RunState(step=1, max_steps=5, max_invalid_attempts=0)
    assert isinstance(decide(strict, ChatResult(content=""), TOOLS), Failed)


def test_max_steps_stops_a_run_that_needs_another_call() -> None:
    last = RunState(step=5, max_steps=5)
    assert decide(last, tool_calls_reply(CALC), TOOLS) == MaxStepsReached(5)
    assert decide(last, tool_calls_reply(("nope", {})), TOOLS) == MaxStepsReached(5)
    assert decide(last, ChatResult(content=None), TOOLS) == MaxStepsReached(5)


def test_exhausted_retries_win_over_max_steps() -> None:
    both = RunState(step=5, max_steps=5, invalid_attempts=1, max_invalid_attempts=1)
    assert isinstance(decide(both, ChatResult(content=None), TOOLS), Failed)


def test_decide_is_deterministic() -> None:
    output = tool_calls_reply(CALC, ("calculator", "not json"))
    assert decide(STATE, output, TOOLS) == decide(STATE, output, TOOLS)


def test_advance_counts_steps_and_consecutive_unusable_outputs() -> None:
    state = STATE
    state = advance(state, decide(state, ChatResult(content=None), TOOLS))
    assert (state.step, state.invalid_attempts) == (2, 1)
    state = advance(state, decide(state, tool_calls_reply(("nope", {})), TOOLS))
    assert (state.step, state.invalid_attempts) == (3, 2)
    state = advance(state, decide(state, tool_calls_reply(CALC), TOOLS))
    assert (state.step, state.invalid_attempts) == (4, 0)
    assert (state.max_steps, state.max_invalid_attempts) == (5, 3)


@pytest.mark.parametrize("decision", [FinalAnswer("x"), MaxStepsReached(3), Failed("garbage")])
def test_terminal_decisions_do_not_advance(
    decision: FinalAnswer | MaxStepsReached | Failed,
) -> None:
    with pytest.raises(ValueError, match="ends the run"):
        advance(STATE, decision)


@pytest.mark.parametrize(
    ("step", "max_steps", "invalid", "max_invalid"),
    [(0, 5, 0, 3), (1, 0, 0, 3), (1, 5, -1, 3), (1, 5, 0, -1)],
)
def test_run_state_refuses_nonsense(
    step: int, max_steps: int, invalid: int, max_invalid: int
) -> None:
    with pytest.raises(ValueError, match=r"start at 1|cannot be negative"):
        RunState(step, max_steps, invalid, max_invalid)


def test_a_cut_off_reply_when_a_tool_call_was_required_is_retried() -> None:
    state = RunState(step=1, max_steps=5, tool_required=True)
    cut = ChatResult(content='{"name": "calculator", "arguments": {"expre', finish_reason="length")
    decision = decide(state, cut, TOOLS)
    assert decision == EmptyOutput(1, CUT_OFF_MESSAGE)
    free = decide(STATE, cut, TOOLS)
    assert isinstance(free, FinalAnswer)
    assert free.truncated
