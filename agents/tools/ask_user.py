"""`ask_user`: the model asks the person it works for a question, and waits for the answer.

A call of it always pauses the run the way a call that needs approval does
(agents/runs/approvals.py): the run goes to `requires_action` with the question as a pending
call, and the decision `answer` (POST /v1/runs/{id}/approvals) resumes it with the answer as
the call's result; `deny`, or the wait's expiry, tells the model no answer came. The function
itself only runs if a call reaches it without a person's answer, which the loop never lets
happen; it then says so as a tool error rather than invent an answer.
"""

from __future__ import annotations

from agents.errors import ToolError
from agents.tools.registry import Tool, tool

ASK_USER = "ask_user"


def ask_user(question: str) -> str:
    """Ask the user a question and wait for their answer. Use it when you need information or
    a choice only the user can give.

    Args:
        question: The question, as the user should read it.
    """
    raise ToolError("ask_user is answered by a person; no answer was given")


ASK_USER_TOOL: Tool = tool(ask_user, name=ASK_USER, idempotent=True)
"""Registered with the built-in tools; an agent lists it like any other tool."""
