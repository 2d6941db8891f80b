"""Running a step's tool calls so that each one's effects happen once.

A call with a result is never run again. The others of a step (one model reply) run together,
at most `run_tool_concurrency` at a time: such a chunk is marked started, with the lease
renewed, in one committed transaction; the tools run concurrently (fenced: stopped before the
lease could lapse); each result is stored under its call's id as it comes in. A call found started
but without a result was cut short by a dead worker or a lost lease, so it may have taken
effect: an idempotent tool (`Tool.idempotent`) runs it again with the same idempotency key;
any other gets OUTCOME_UNKNOWN as its result, an error the model reads, and is not repeated.

A sync tool other than the memory tools runs on the portal's `ToolThreads`, so deployer tools
that hang (a thread cannot be stopped) never take the threads the memory tools run on, and
once too many have hung, further calls are refused with a tool error instead of waiting.

A call its agent's approval policy names runs only once a human approved it (perhaps with
edited arguments, which the model is told of); a denied one is answered with the denial
(agents/runs/approvals.py) and never runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
from dataclasses import replace
from typing import Any

from agents import telemetry
from agents.errors import ToolError, UnknownTool
from agents.records import Run, Step, ToolCallRecord
from agents.runs import approvals
from agents.runs.journal import RunJournal
from agents.runs.portal import ToolThreads
from agents.tools.context import ToolContext
from agents.tools.memory import MEMORY_TOOLS
from agents.tools.registry import Tool, ToolRegistry

log = logging.getLogger(__name__)

OUTCOME_UNKNOWN = (
    "outcome unknown: this call was started by an earlier attempt of the run that stopped "
    "before it reported back, so it may or may not have taken effect. It was not run again; "
    "check whether it took effect before calling it again."
)


def idempotency_key(run: Run, step: int, call_id: str) -> str:
    """The key of one tool call: the same for every execution of it (a resumed run, a batch
    item's retry that continues the run) and for no other call (call ids repeat across steps
    and runs)."""
    return f"{run.lineage}:{step}:{call_id}"


def on_tool_threads(tool: Tool, threads: ToolThreads) -> Tool:
    """The tool as this runner calls it: a sync deployer (or built-in) tool with its function
    run on `threads`; a memory tool or an async tool as it is."""
    if tool in MEMORY_TOOLS or inspect.iscoroutinefunction(tool.function):
        return tool
    function = tool.function

    async def on_threads(*args: Any, **kwargs: Any) -> Any:
        return await threads.run(tool.name, function, *args, **kwargs)

    return replace(tool, function=on_threads)


def run_tool_calls(journal: RunJournal, step: Step, tools: ToolRegistry, ctx: ToolContext) -> Step:
    """Execute the step's calls that have no result yet, persisting each as it ends; returns
    the step with every result. Calls that need no running (denied, answered, of unknown
    outcome, of a missing tool) are answered first; the rest run concurrently, at most
    `run_tool_concurrency` at a time, each chunk marked started in one commit before it runs;
    memory tool calls run one at a time, in order, after the others."""
    ended: dict[str, ToolCallRecord] = {}
    runnable: list[tuple[ToolCallRecord, Tool]] = []
    for call in step.tool_calls:
        if call.result is not None:
            continue
        settled = _without_running(journal, step.step, call, tools)
        if settled is None:
            runnable.append((call, tools.get(call.name)))
        else:
            ended[call.call_id] = _finish(journal, step, call, *settled)
    for chunk in _chunks(runnable, journal.services.settings.run_tool_concurrency):
        for call in _run_together(journal, step, chunk, ctx):
            ended[call.call_id] = call
    return replace(step, tool_calls=tuple(ended.get(c.call_id, c) for c in step.tool_calls))


def _chunks(
    runnable: list[tuple[ToolCallRecord, Tool]], limit: int
) -> list[list[tuple[ToolCallRecord, Tool]]]:
    """What runs together: the other tools' calls `limit` at a time, then each memory tool's
    call alone, in the model's order (edits of one block depend on their order, and a user's
    first write creates the block)."""
    others = [pair for pair in runnable if pair[1] not in MEMORY_TOOLS]
    chunks = [others[start : start + limit] for start in range(0, len(others), limit)]
    return chunks + [[pair] for pair in runnable if pair[1] in MEMORY_TOOLS]


def _finish(
    journal: RunJournal, step: Step, call: ToolCallRecord, result: str, is_error: bool
) -> ToolCallRecord:
    """Persist the call's result (with the reviewer's notes) and return it."""
    done = replace(call, result=_reviewed(step, call, result), is_error=is_error)
    journal.record_tool_result(step.step, done)
    return done


def _run_together(
    journal: RunJournal, step: Step, chunk: list[tuple[ToolCallRecord, Tool]], ctx: ToolContext
) -> list[ToolCallRecord]:
    """Run these calls at once, each result persisted (from this thread) as it comes in."""
    run, threads = journal.run, journal.services.portal.tool_threads
    journal.tools_started(step.step, [call.call_id for call, _ in chunk])
    finished: queue.SimpleQueue[tuple[ToolCallRecord, str, bool]] = queue.SimpleQueue()
    recorded: list[ToolCallRecord] = []

    async def one(call: ToolCallRecord, tool: Tool) -> None:
        key = idempotency_key(run, step.step, call.call_id)
        call_ctx = replace(ctx, tool_call_id=call.call_id, idempotency_key=key)
        with telemetry.tool_call(call.name, call.call_id, step.step) as record:
            try:
                result = await on_tool_threads(tool, threads).call(call_ctx, call.arguments)
                finished.put((call, result, False))
            except ToolError as exc:
                record.error(exc.message)
                finished.put((call, exc.message, True))

    async def together() -> None:
        await asyncio.gather(*(one(call, tool) for call, tool in chunk))

    def flush() -> None:
        while True:
            try:
                call, result, is_error = finished.get_nowait()
            except queue.Empty:
                return
            recorded.append(_finish(journal, step, call, result, is_error))

    journal.lease.wait(together(), fenced=True, tick=flush)
    flush()
    return recorded


def _reviewed(step: Step, call: ToolCallRecord, result: str) -> str:
    """The result of an approved call, telling the model what the reviewer changed or said."""
    if call.approval != "approved" or approvals.answer(call) is not None:
        return result
    asked = next((c.arguments for c in step.output.tool_calls if c.id == call.call_id), None)
    notes = []
    if asked is not None and asked != call.arguments:
        notes.append(f"a human reviewer changed the arguments to {call.arguments}")
    if call.approval_message:
        notes.append(f"the reviewer's note: {call.approval_message}")
    return "\n".join([result, *(f"({note})" for note in notes)])


def _without_running(
    journal: RunJournal, step: int, call: ToolCallRecord, tools: ToolRegistry
) -> tuple[str, bool] | None:
    """The result of a call that is not to run (and whether it is an error); None for a
    call whose tool runs now."""
    if call.approval == "denied":
        return approvals.denial(call), True
    answered = approvals.answer(call)
    if answered is not None:  # ask_user: a person's answer is its result
        return answered, False
    tool = tools.get(call.name) if call.name in tools else None
    if call.started_at is not None and (tool is None or not tool.idempotent):
        log.warning(
            "run %s: call %s (%s) of step %d was started by an earlier attempt and is not "
            "idempotent; its outcome is unknown and it is not run again",
            journal.run.id,
            call.call_id,
            call.name,
            step,
        )
        return OUTCOME_UNKNOWN, True
    if tool is None:  # the agent's tools changed, or this worker lacks one
        return UnknownTool(call.name, tools.names()).message, True
    return None
