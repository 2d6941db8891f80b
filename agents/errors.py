"""Errors of the agents layer.

AgentmillError
 └── AgentError                        root of this package
      ├── ToolError                    a tool call failed; its message goes back to the model
      │    ├── UnknownTool             the model named a tool this agent does not have
      │    ├── InvalidToolArguments    the arguments are not JSON or do not fit the schema
      │    ├── ToolTimeout             the tool ran past its time limit
      │    └── ToolFailed              the tool raised something else (the model sees only the
      │                                exception type: its text may hold secrets)
      ├── ToolDefinitionError          a function cannot be a tool (a deployer's bug, at load time)
      │    └── DuplicateTool           two tools share a name
      ├── RunCancelled                 a cancel was heard while the attempt waited (control
      │                                flow: the loop ends the run `cancelled`)
      ├── LeaseLost                    another worker took the run over (or may have: renewals
      │                                failed for most of the lease); stop without writing
      └── OutageOutlasted              the model server or the database stayed unavailable past
                                       the retry budget; stop the attempt, leave the run be
                                       (agents/runs/retry.py)

Conflict (core.errors, HTTP 409)
 ├── SessionBusy                       the session already has an active run
 ├── AgentBusy                         an agent with active runs cannot be deleted
 ├── IdempotencyKeyReused              the key came back with a different request
 └── McpServerInUse                    an MCP server agents name cannot be deleted

UserError (core.errors)
 ├── UnknownMcpServer                  an agent names an MCP server not registered (422)
 └── InvalidSchedule                   a schedule's timing or session cannot be used (422)
"""

from __future__ import annotations

from core.errors import AgentmillError, Conflict, UserError

INTERNAL_ERROR_MESSAGE = (
    "the run stopped on an internal error; the worker's log has the details under this run's id"
)
"""What a run failed by a bug says: the exception's text can hold hosts, ports and roles."""

# The model reads tool errors in its context window; an unbounded message (a huge argument
# echoed back, a long list of names) would crowd out the conversation.
MAX_TOOL_ERROR_CHARS = 1000


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_repr(value: str, limit: int = 64) -> str:
    """`repr` of a model-supplied string, cut so that garbage cannot flood a message."""
    return repr(_bounded(value, limit))


class AgentError(AgentmillError):
    """Root of every error the agents layer raises on purpose."""


class ToolError(AgentError):
    """A tool call failed in a way the model should hear about; `message` is sent to it.

    Tools raise this (or a subclass) for failures meant for the model, such as "division by
    zero" or "unknown time zone"; the text is cut to MAX_TOOL_ERROR_CHARS.
    """

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        self.message = _bounded(message, MAX_TOOL_ERROR_CHARS)
        self.tool = tool
        super().__init__(self.message)


class UnknownTool(ToolError):
    """No tool of that name is available."""

    def __init__(self, name: str, available: list[str]) -> None:
        names = ", ".join(sorted(available)[:30]) or "none"
        super().__init__(f"unknown tool {short_repr(name)}; available tools: {names}", tool=name)
        self.name = name
        self.available = available


class InvalidToolArguments(ToolError):
    """The model's arguments for a tool are not valid JSON or do not match its schema."""

    def __init__(self, tool: str, problem: str) -> None:
        super().__init__(f"invalid arguments for tool {tool!r}: {problem}", tool=tool)
        self.problem = problem


class ToolTimeout(ToolError):
    """A tool call ran longer than the tool's limit."""

    def __init__(self, tool: str, seconds: float) -> None:
        super().__init__(f"tool {tool!r} timed out after {seconds:g} s", tool=tool)
        self.seconds = seconds


class ToolFailed(ToolError):
    """A tool raised an unexpected exception; the exception is chained as `__cause__`."""

    def __init__(self, tool: str, error_type: str) -> None:
        super().__init__(f"tool {tool!r} failed with an internal error ({error_type})", tool=tool)
        self.error_type = error_type


class ToolDefinitionError(AgentError):
    """A function cannot be turned into a tool, or a tool entry point cannot be loaded."""

    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(f"tool {tool!r}: {reason}")
        self.tool = tool
        self.reason = reason


class DuplicateTool(ToolDefinitionError):
    """A registry already holds a tool of this name."""

    def __init__(self, tool: str) -> None:
        super().__init__(tool, "a tool of this name is already registered")


class SessionBusy(Conflict):
    """The session already has an active run and the request did not ask to queue behind it."""

    def __init__(self, session_id: str, run_id: str) -> None:
        super().__init__(
            f"session {session_id} has an active run ({run_id}); wait for it, cancel it, or "
            "send with queue=true to run after it",
            param="session_id",
        )
        self.run_id = run_id


class AgentBusy(Conflict):
    """The agent has active runs, so it cannot be deleted."""


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key came back with a different request."""

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used for a different request; use a new key",
            param="Idempotency-Key",
        )


class RunCancelled(AgentError):
    """A cancel was requested while the attempt waited (internal control flow)."""


class LeaseLost(AgentError):
    """Another worker took the run over (this one's lease lapsed): stop without writing."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id}: lease lost to another worker")
        self.run_id = run_id


class UnknownMcpServer(UserError):
    """An agent names MCP servers its tenant has not registered (422)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            f"no MCP server named {', '.join(repr(n) for n in names)}; register it first "
            "(POST /v1/mcp-servers)",
            param="mcp_servers",
        )


class InvalidSchedule(UserError):
    """A schedule's timing or session cannot be used (422, `param` names the field)."""


class McpServerInUse(Conflict):
    """An MCP server cannot be deleted while agents name it."""

    def __init__(self, name: str, agents: list[str]) -> None:
        shown = ", ".join(repr(a) for a in agents[:5]) + (" and more" if len(agents) > 5 else "")
        super().__init__(
            f"MCP server {name!r} is used by the agent(s) {shown}; remove it from them first"
        )
