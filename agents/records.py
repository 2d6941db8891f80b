"""Plain data the agents layer takes and returns (dataclasses inside; api/ adds pydantic)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

# The one Usage: a run's and a step's totals have the shape of one model call's.
from inference.client.model_client import Usage as Usage

ToolChoice = Literal["auto", "required", "none"]
RunStatus = Literal[
    "queued", "running", "requires_action", "succeeded", "failed", "cancelled", "incomplete"
]
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running", "requires_action")
"""Not ended: a session's later runs wait behind these (`requires_action` holds no worker)."""
FINAL_STATUSES: tuple[RunStatus, ...] = ("succeeded", "failed", "cancelled", "incomplete")


@dataclass(frozen=True)
class RunFilter:
    """What a listing of a tenant's runs keeps: None matches any."""

    status: RunStatus | None = None
    agent_id: uuid.UUID | None = None
    user_id: str | None = None
    session_id: uuid.UUID | None = None
    batch_id: uuid.UUID | None = None


@dataclass(frozen=True)
class MemoryPolicy:
    """How an agent uses memory."""

    recall_k: int = 5
    """Long-term memories retrieved for each user message (0: none)."""
    blocks: tuple[str, ...] | None = None
    """Core block labels placed in the context; None: every block of the agent and user."""
    history_messages: int = 20
    """Most recent session messages considered for the context (older ones are summarised)."""
    save_episodes: bool = True
    """Store each finished exchange as an episodic memory."""
    extract_facts: bool = True
    """After a run, let the model extract durable facts into memory (a background task)."""
    shared_blocks_writable: bool = False
    """Let the core_memory tools edit the agent-wide blocks every user sees. Off, a tool edit
    in a user's session writes that user's own block, and one in a session without a user is
    refused: no end user can put text into another's prompt."""

    def as_json(self) -> dict[str, Any]:
        """The jsonb form stored on the agent."""
        return {
            "recall_k": self.recall_k,
            "blocks": list(self.blocks) if self.blocks is not None else None,
            "history_messages": self.history_messages,
            "save_episodes": self.save_episodes,
            "extract_facts": self.extract_facts,
            "shared_blocks_writable": self.shared_blocks_writable,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MemoryPolicy:
        """Inverse of `as_json`; missing keys take their defaults."""
        blocks = raw.get("blocks")
        values = {k: v for k, v in raw.items() if k in _POLICY_FIELDS and k != "blocks"}
        return cls(**values, blocks=tuple(blocks) if blocks is not None else None)


APPROVE_ALL = "*"
"""In ApprovalPolicy.tools: every tool needs approval."""


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which of an agent's tool calls wait for a human's approval before they run."""

    tools: tuple[str, ...] = ()
    """Tool names that need approval; `*` (APPROVE_ALL): every tool; `prefix*`: every tool
    whose name starts with `prefix` (`github__*`: the tools of the MCP server `github`)."""
    timeout_s: int = 86_400
    """How long a run waits for a decision; then its pending calls are denied."""

    def needs_approval(self, tool: str) -> bool:
        """Whether a call of this tool waits for a human: `*` names every tool, and an entry
        ending in `*` every tool whose name starts with the rest (`github__*`: an MCP
        server's tools)."""
        return any(
            tool == entry or (entry.endswith("*") and tool.startswith(entry[:-1]))
            for entry in self.tools
        )

    def as_json(self) -> dict[str, Any]:
        """The jsonb form stored on the agent."""
        return {"tools": list(self.tools), "timeout_s": self.timeout_s}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ApprovalPolicy:
        """Inverse of `as_json`; missing keys take their defaults."""
        default = cls()
        return cls(
            tools=tuple(raw.get("tools", default.tools)),
            timeout_s=int(raw.get("timeout_s", default.timeout_s)),
        )


@dataclass(frozen=True)
class McpServerUse:
    """An MCP server an agent may use (by the server's name), and which of its tools."""

    server: str
    """The registered server's name; its tools are called `<server>__<tool>`."""
    tools: tuple[str, ...] | None = None
    """The server's own names of the tools offered; None: all of them."""

    def as_json(self) -> dict[str, Any]:
        """The jsonb form stored on the agent."""
        return {
            "server": self.server,
            "tools": list(self.tools) if self.tools is not None else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> McpServerUse:
        """Inverse of `as_json`."""
        tools = raw.get("tools")
        return cls(server=str(raw["server"]), tools=tuple(tools) if tools is not None else None)


_POLICY_FIELDS = (
    "recall_k",
    "history_messages",
    "save_episodes",
    "extract_facts",
    "shared_blocks_writable",
)


@dataclass(frozen=True, kw_only=True)
class NewAgent:
    """What makes an agent, as a create sets it: the one list of an agent's own fields."""

    name: str
    """Unique per tenant."""
    model: str
    """A router alias (`local` is the bundled model)."""
    max_steps: int
    """Most model calls per run."""
    instructions: str = ""
    """The system prompt's first part."""
    tools: tuple[str, ...] = ()
    """Names of the tools it may call."""
    memory: MemoryPolicy = field(default_factory=MemoryPolicy)
    """How it uses memory."""
    tool_choice: ToolChoice = "auto"
    """The first step's tool choice: `required` makes the model start with a tool call (the
    later steps are `auto`, so it can answer); `none` never offers tools."""
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    """Which tool calls wait for a human before they run."""
    mcp_servers: tuple[McpServerUse, ...] = ()
    """MCP servers whose tools it may call, besides `tools`."""
    parallel_tool_calls: bool | None = None
    """Whether the model may make several tool calls in one reply; None: the model's default
    (one on the bundled model, several on OpenAI's)."""
    temperature: float | None = None
    """Sampling temperature; None: the model's default."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free JSON object."""


@dataclass(frozen=True, kw_only=True)
class Agent(NewAgent):
    """A stored agent: its fields with the key, owner and times the database adds."""

    id: uuid.UUID
    """Primary key."""
    tenant_id: uuid.UUID
    """Owner."""
    created_at: datetime
    """Creation time."""
    updated_at: datetime
    """Last change."""


class Unset(enum.Enum):
    """The type of UNSET: a field a change leaves alone (None can be a value)."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True, kw_only=True)
class AgentChanges:
    """A change to an agent: each field of NewAgent, UNSET where it stays as it is (`memory`
    is the whole new policy). tests/agents/test_records.py keeps the two field lists equal."""

    name: str | Unset = UNSET
    model: str | Unset = UNSET
    max_steps: int | Unset = UNSET
    instructions: str | Unset = UNSET
    tools: tuple[str, ...] | Unset = UNSET
    memory: MemoryPolicy | Unset = UNSET
    tool_choice: ToolChoice | Unset = UNSET
    approval: ApprovalPolicy | Unset = UNSET
    mcp_servers: tuple[McpServerUse, ...] | Unset = UNSET
    parallel_tool_calls: bool | Unset | None = UNSET
    temperature: float | Unset | None = UNSET
    metadata: dict[str, Any] | Unset = UNSET

    def sent(self) -> dict[str, Any]:
        """The fields that change, by name."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not UNSET}


@dataclass(frozen=True)
class ChatSession:
    """A conversation of one end user with one agent."""

    id: uuid.UUID
    """Primary key."""
    tenant_id: uuid.UUID
    """Owner."""
    agent_id: uuid.UUID
    """The agent."""
    user_id: str | None
    """The end user (memories and user blocks are scoped to it)."""
    metadata: dict[str, Any]
    """Free JSON object."""
    summary: str
    """The model's summary of the messages older than the context holds."""
    summary_through: int
    """Seq of the last message the summary covers (0: none)."""
    created_at: datetime
    """Creation time."""


@dataclass(frozen=True)
class Message:
    """A user message or an agent's answer."""

    id: uuid.UUID
    """Primary key."""
    seq: int
    """Global order; later messages have larger values."""
    session_id: uuid.UUID
    """The session."""
    run_id: uuid.UUID | None
    """The run it started (user) or ended (assistant)."""
    role: Literal["user", "assistant"]
    """Who wrote it."""
    content: str
    """The text."""
    created_at: datetime
    """When it was written."""


@dataclass(frozen=True)
class Run:
    """One execution of an agent on one user message."""

    id: uuid.UUID
    """Primary key."""
    tenant_id: uuid.UUID
    """Owner."""
    session_id: uuid.UUID
    """The session."""
    agent_id: uuid.UUID
    """The agent."""
    status: RunStatus
    """queued, running, requires_action (waiting for a human), succeeded, failed, cancelled
    or incomplete (see stop_reason)."""
    input: str
    """The user message."""
    output: str | None
    """The final answer, when succeeded."""
    stop_reason: str | None
    """Why it ended: answer, max_steps, cancelled, error, worker_lost."""
    error: dict[str, Any] | None
    """{"type", "message"} when it failed."""
    steps: int
    """Model calls made."""
    usage: Usage
    """Token and cost totals."""
    cancel_requested: bool
    """A cancel was asked for and not yet acted on (or acted on)."""
    attempts: int
    """How many times a worker claimed it (more than 1 after a crash)."""
    created_at: datetime
    """When it was queued."""
    started_at: datetime | None
    """When a worker first claimed it."""
    finished_at: datetime | None
    """When it ended."""
    batch_id: uuid.UUID | None = None
    """The batch the run executes an item of, if any."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free JSON object given with the message."""
    outage_yields: int = 0
    """Attempts that handed the run back after an outage outlasted the retry budget (they do
    not count as crashes)."""
    previous_run_id: uuid.UUID | None = None
    """The failed run this one continues (a batch item's retry), if any."""
    lineage_id: uuid.UUID | None = None
    """The first run of that chain; None: this run is the first."""
    required_action: RequiredAction | None = None
    """What a `requires_action` run waits for; None in every other status."""
    webhook_url: str | None = None
    """Its per-request webhook (gets the run's events)."""

    @property
    def finished(self) -> bool:
        """Whether the run has ended."""
        return self.status in FINAL_STATUSES

    @property
    def lineage(self) -> uuid.UUID:
        """The root of its tools' idempotency keys: shared by a run and its retries."""
        return self.lineage_id or self.id


@dataclass(frozen=True)
class ToolCallRecord:
    """A persisted tool call."""

    step: int
    """The step that asked for it."""
    call_id: str
    """The model's id for the call."""
    position: int
    """Order within the step."""
    name: str
    """Tool name."""
    arguments: str
    """Raw JSON arguments as the model wrote them."""
    result: str | None
    """What the model is shown; None while it has not finished."""
    is_error: bool
    """Whether the result is an error message."""
    started_at: datetime | None = None
    """When its tool was first started; set without a result, the call may have had effects."""
    starts: int = 0
    """How many times its tool was started (more than 1: an idempotent call re-run)."""
    approval: ApprovalState | None = None
    """None: the call needs no approval; else where its human decision stands."""
    approval_message: str | None = None
    """A denial's reason for the model, or the note given with an approval."""


ApprovalState = Literal["pending", "approved", "denied"]
ApprovalDecision = Literal["approve", "deny", "edit", "answer"]
PendingKind = Literal["approval", "question"]


@dataclass(frozen=True)
class PendingCall:
    """A tool call waiting for a human's decision."""

    call_id: str
    name: str
    arguments: str
    """As the model wrote them (JSON text)."""
    parameters: dict[str, Any]
    """The tool's JSON schema of its arguments (an edit is checked against it)."""
    kind: PendingKind = "approval"
    """`approval`: approve, deny or edit it; `question` (an ask_user call): answer or deny."""


@dataclass(frozen=True)
class RequiredAction:
    """What a run in `requires_action` waits for: decisions on these calls of its step."""

    step: int
    calls: tuple[PendingCall, ...]
    expires_at: datetime
    """When the pending calls are denied for want of a decision."""


@dataclass(frozen=True)
class CallDecision:
    """A human's decision on one pending call."""

    call_id: str
    decision: ApprovalDecision
    arguments: str | None = None
    """An edit's replacement arguments (JSON text), already checked against the schema."""
    message: str | None = None
    """For the model: why it was denied, a note with the approval, or the answer."""


StepDecision = Literal["final", "tools", "tool_error", "empty", "max_steps", "failed"]
"""What the loop decided about a step's output (agents/runs/decide.py)."""


@dataclass(frozen=True)
class CalledTool:
    """A tool call as the model wrote it (its arguments unparsed JSON text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class StepOutput:
    """What the model answered in one step, with what the loop added to it; stored as JSON
    (`to_json`) and shown as such at GET /v1/runs/{id}/steps."""

    content: str | None
    tool_calls: tuple[CalledTool, ...] = ()
    finish_reason: str | None = None
    model: str | None = None
    failure: str | None = None
    """Why a `failed` step's output could not be used."""
    retry_message: str | None = None
    """The message an `empty` step sent back to the model, asking again."""

    def to_json(self) -> dict[str, Any]:
        """The stored form; `failure` and `retry_message` only when set."""
        data: dict[str, Any] = {
            "content": self.content,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ],
            "finish_reason": self.finish_reason,
            "model": self.model,
        }
        if self.failure is not None:
            data["failure"] = self.failure
        if self.retry_message is not None:
            data["retry_message"] = self.retry_message
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepOutput:
        """The stored form read back (rows written before `model` existed lack it)."""
        return cls(
            content=data.get("content"),
            tool_calls=tuple(
                CalledTool(c["id"], c["name"], c["arguments"]) for c in data.get("tool_calls") or []
            ),
            finish_reason=data.get("finish_reason"),
            model=data.get("model"),
            failure=data.get("failure"),
            retry_message=data.get("retry_message"),
        )


@dataclass(frozen=True)
class Step:
    """A persisted model call of a run."""

    step: int
    """1-based."""
    context: list[dict[str, Any]]
    """The messages sent to the model (the recorded context)."""
    output: StepOutput
    decision: StepDecision
    invalid_attempts: int
    """Consecutive unusable outputs up to and including this one."""
    usage: Usage
    """Tokens and cost of the call."""
    model_ms: float
    """Time spent waiting for the model."""
    tool_calls: tuple[ToolCallRecord, ...]
    """Its tool calls in order."""
    created_at: datetime
    """When the output was persisted."""


@dataclass(frozen=True)
class Event:
    """An entry of a run's event log."""

    run_id: uuid.UUID
    """The run."""
    seq: int
    """1-based order within the run; the SSE `id`."""
    type: str
    """The SSE `event` (see agents/runs/events.py)."""
    data: dict[str, Any]
    """JSON payload; always includes `run_id`."""
    created_at: datetime
    """When it was appended."""


BatchStatus = Literal["running", "completed", "cancelled"]
ItemStatus = Literal["pending", "queued", "succeeded", "failed", "cancelled"]
FINAL_ITEM_STATUSES: tuple[ItemStatus, ...] = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class NewBatchItem:
    """One input of a batch to create."""

    input: str
    """The user message its run gets."""
    user_id: str | None = None
    """The end user of its session (memories and user blocks are scoped to it)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free JSON object, kept on the item and its runs."""


@dataclass(frozen=True, kw_only=True)
class NewBatch:
    """A batch to create: inputs run on one agent, each in a session of its own."""

    agent_id: uuid.UUID
    items: tuple[NewBatchItem, ...]
    concurrency: int = 4
    """Most items queued or running at once."""
    max_attempts: int = 2
    """Most runs per item (a retryable failure starts another)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free JSON object, kept on the batch."""
    webhook_url: str | None = None
    """Where the batch's end is POSTed (a per-request webhook)."""


@dataclass(frozen=True)
class BatchCounts:
    """How many items of a batch are in each state."""

    pending: int = 0
    """Waiting for one of the batch's slots (new, or to be retried)."""
    queued: int = 0
    """Their run is queued."""
    running: int = 0
    """Their run is running."""
    succeeded: int = 0
    """Final: answered."""
    failed: int = 0
    """Final: failed after the retry policy (or ended incomplete)."""
    cancelled: int = 0
    """Final: cancelled."""

    @property
    def total(self) -> int:
        """Every item."""
        active = self.pending + self.queued + self.running
        return active + self.succeeded + self.failed + self.cancelled


@dataclass(frozen=True)
class Batch:
    """Many inputs run by one agent, each as its own run in its own session."""

    id: uuid.UUID
    """Primary key."""
    tenant_id: uuid.UUID
    """Owner."""
    agent_id: uuid.UUID
    """The agent every item runs on."""
    status: BatchStatus
    """running until every item is final, then completed (or cancelled after a cancel)."""
    concurrency: int
    """Most items with a queued or running run at once."""
    max_attempts: int
    """Most runs per item (retries of retryable failures included)."""
    cancel_requested: bool
    """A cancel was asked for."""
    metadata: dict[str, Any]
    """Free JSON object."""
    webhook_url: str | None
    """Its per-request webhook (gets the batch's end)."""
    counts: BatchCounts
    """Items per state."""
    usage: Usage
    """Tokens and cost of every attempt of every item."""
    created_at: datetime
    """Creation time."""
    finished_at: datetime | None
    """When the last item became final."""


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch with its latest attempt's outcome."""

    batch_id: uuid.UUID
    """The batch."""
    position: int
    """0-based order in the batch as submitted."""
    input: str
    """The user message."""
    user_id: str | None
    """The end user of its sessions."""
    metadata: dict[str, Any]
    """Free JSON object given with it."""
    status: ItemStatus
    """pending, queued (its run is queued or running), succeeded, failed or cancelled."""
    attempts: int
    """Runs made for it."""
    run_id: uuid.UUID | None
    """The latest attempt's run."""
    output: str | None
    """The answer, when succeeded."""
    error: dict[str, Any] | None
    """{"type", "message"} of the latest attempt, when it failed."""
    usage: Usage
    """Tokens and cost summed over its attempts."""
    finished_at: datetime | None
    """When it became final."""
