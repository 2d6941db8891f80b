"""Sync tools that hang: their threads are counted, never taken from the memory tools, and once
too many hang, further calls are refused with a tool error instead of waiting forever."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from agents.errors import ToolError
from agents.runs.portal import Portal, ToolThreads
from agents.tools.registry import Tool, tool
from core.config import Settings
from inference.client.scripted import ScriptedModel, text_reply, tool_calls_reply
from tests.agents.conftest import make_world

RELEASE = threading.Event()
"""Set at the end of each test, so that the 'hung' threads do end."""


@pytest.fixture(autouse=True)
def _release_hung_threads() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


def hang(seconds: float) -> str:
    """Block for as long as the test lasts (a sync tool that never returns).

    Args:
        seconds: Ignored.
    """
    RELEASE.wait()
    return "woke up"


HANG: Tool = tool(hang, timeout_s=0.2)


def test_a_call_given_up_on_counts_as_hung_until_its_thread_ends() -> None:
    threads = ToolThreads(max_hung=2)
    finish = threading.Event()

    def slow() -> str:
        finish.wait(10)
        return "late"

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await threads.run("slow", slow)

    asyncio.run(give_up())
    assert threads.hung == 1
    assert asyncio.run(threads.run("quick", lambda: 7)) == 7  # one hung: calls still run
    finish.set()
    deadline = time.monotonic() + 5
    while threads.hung and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads.hung == 0


def test_calls_are_refused_while_the_cap_of_hung_calls_is_full() -> None:
    threads = ToolThreads(max_hung=2)

    async def hang_once() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await threads.run("hang", hang, 0)

    asyncio.run(hang_once())
    asyncio.run(hang_once())
    assert threads.hung == 2
    ran = threading.Event()
    with pytest.raises(ToolError, match="too many hung tool calls") as info:
        asyncio.run(threads.run("other", ran.set))
    assert info.value.tool == "other"
    assert not ran.is_set()


def test_errors_and_context_variables_cross_the_thread() -> None:
    threads = ToolThreads()

    def fail() -> None:
        raise ValueError("from the tool")

    with pytest.raises(ValueError, match="from the tool"):
        asyncio.run(threads.run("fail", fail))
    assert threads.hung == 0


def test_hung_sync_tools_do_not_block_the_memory_tools(
    engine: Engine, loop_settings: Settings
) -> None:
    # More hung calls than the loop's default executor has threads (min(32, cpus + 4)): with
    # sync tools on that executor, the memory tools after them would wait forever.
    portal = Portal(max_hung_tools=40)
    try:
        world = make_world(engine, loop_settings, portal, [HANG])
        hung = [("hang", {"seconds": 1e9}) for _ in range(36)]
        run = world.message("hang, then remember")
        model = ScriptedModel(
            [
                tool_calls_reply(*hung, ("memory_save", {"content": "The user likes kites"})),
                tool_calls_reply(("memory_search", {"query": "kites"})),
                text_reply("done"),
            ]
        )
        world.executor(model).execute(run.id)
        assert world.run(run.id).status == "succeeded"
        first, second = world.steps(run.id)[:2]
        assert all("timed out" in (c.result or "") for c in first.tool_calls[:-1])
        assert first.tool_calls[-1].result == "saved"
        assert "The user likes kites" in (second.tool_calls[0].result or "")
        assert portal.tool_threads.hung == 36
        world.memory.close()
    finally:
        RELEASE.set()
        portal.close()


def test_a_full_cap_refuses_the_next_sync_call_as_a_tool_error(
    engine: Engine, loop_settings: Settings
) -> None:
    portal = Portal(max_hung_tools=2)
    one_at_a_time = loop_settings.model_copy(update={"run_tool_concurrency": 1})
    try:
        world = make_world(engine, one_at_a_time, portal, [HANG])
        run = world.message("hang thrice")
        calls = [("hang", {"seconds": 1}) for _ in range(3)]
        world.executor(ScriptedModel([tool_calls_reply(*calls), text_reply("ok")])).execute(run.id)
        results = [c.result or "" for c in world.steps(run.id)[0].tool_calls]
        assert ["timed out" in r for r in results] == [True, True, False]
        assert results[2].startswith("too many hung tool calls")
        assert world.steps(run.id)[0].tool_calls[2].is_error
        world.memory.close()
    finally:
        RELEASE.set()
        portal.close()
