"""Tools the end-to-end tests load into real workers (AGENTMILL_TOOL_MODULES).

`slow_record` writes a line when it starts and one when it finishes to the file named by
AGENTMILL_TEST_RECORD (a test-only variable), so a test can kill a worker mid-call and then
count how often each call's side effect happened.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agents.tools import tool
from agents.tools.context import ToolContext


def _record(line: str) -> None:
    path = Path(os.environ["AGENTMILL_TEST_RECORD"])
    with path.open("a") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def slow_record(ctx: ToolContext, note: str) -> str:
    """Write a note to the record; takes a few seconds.

    Args:
        note: Any short text.
    """
    _record(f"start {ctx.tool_call_id} {os.getpid()}")
    time.sleep(float(os.environ.get("AGENTMILL_TEST_TOOL_SECONDS", "4")))
    _record(f"done {ctx.tool_call_id} {os.getpid()}")
    return "recorded"


TOOLS = [tool(slow_record, timeout_s=60.0)]
