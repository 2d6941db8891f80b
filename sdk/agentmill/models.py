"""Response models of the SDK: mirrors of the server's public schemas (api/schemas/*.py):
agents, sessions, runs and steps here; memories, blocks and batches in memory_models.py and
batch_models.py.

Fields the server adds later are ignored rather than refused, so an older SDK keeps working.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

RunStatus = Literal[
    "queued", "running", "requires_action", "succeeded", "failed", "cancelled", "incomplete"
]
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "incomplete"})
"""Statuses a run never leaves."""


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back for the next (None: no more)."""

    data: list[T]
    next_cursor: str | None = None


class Me(BaseModel):
    """The tenant and key behind the client's API key."""

    tenant_id: uuid.UUID
    tenant_name: str
    key_id: str


class MemoryPolicy(BaseModel):
    """How an agent uses memory."""

    recall_k: int
    """Long-term memories retrieved per message."""
    blocks: list[str] | None
    """Core block labels shown in context; None: all of the agent's and user's."""
    history_messages: int
    """Recent session messages in context; older ones are summarised."""
    save_episodes: bool
    """Store each finished exchange as a memory."""
    extract_facts: bool
    """Let the model extract durable facts after a run."""
    shared_blocks_writable: bool = False
    """Let the core_memory tools edit the agent's own blocks, which every user's prompt holds
    (off: a tool edit writes the session user's own block)."""


class ApprovalPolicy(BaseModel):
    """Which of an agent's tool calls wait for a human's approval."""

    tools: list[str] = Field(default_factory=list)
    """Tool names whose calls need approval; `*`: every tool."""
    timeout_s: int = 86_400
    """How long a run waits for a decision; then its pending calls are denied."""


class McpServerUse(BaseModel):
    """An MCP server an agent may use, and which of its tools (None: all)."""

    server: str
    tools: list[str] | None = None


class McpTool(BaseModel):
    """A tool of an MCP server's last listing; `exposed` is the name agents call it by
    (None: not offered, `problem` says why)."""

    name: str
    exposed: str | None
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    problem: str | None


class McpServer(BaseModel):
    """A registered MCP server: header names are shown, never their values. `tools` is the
    last listing a worker made (None until a run first used the server)."""

    id: uuid.UUID
    name: str
    transport: Literal["http", "stdio"]
    url: str | None
    command: str | None
    header_names: list[str]
    timeout_s: float | None
    tools: list[McpTool] | None
    listed_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class Webhook(BaseModel):
    """A subscribed endpoint; `secret` (`whsec_...`) only in the answer that created it."""

    id: uuid.UUID
    url: str
    events: list[str]
    agent_id: uuid.UUID | None
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = None


class RequestSecret(BaseModel):
    """The tenant's request signing key, which signs the deliveries of per-request webhooks
    (`webhook_url` on a message or a batch); `secret` only in the answer that made it."""

    created_at: datetime
    secret: str | None = None
    """`whsec_...`: verify those deliveries with it (`agentmill.verify_webhook`)."""


class WebhookAttempt(BaseModel):
    """One try at a delivery."""

    attempt: int
    status_code: int | None
    latency_ms: float | None
    error: str | None
    at: datetime


class WebhookDelivery(BaseModel):
    """One event for one endpoint, with its attempts; `event_id` is the `webhook-id`."""

    id: uuid.UUID
    webhook_id: uuid.UUID | None
    """None for a per-request webhook."""
    url: str | None = None
    """A per-request webhook's address (None for an endpoint's delivery)."""
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    tries: list[WebhookAttempt]


class Agent(BaseModel):
    """An agent: instructions, model alias, tools, memory and approval policies."""

    id: uuid.UUID
    name: str
    instructions: str
    model: str
    tools: list[str]
    memory: MemoryPolicy
    max_steps: int
    tool_choice: Literal["auto", "required", "none"]
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    mcp_servers: list[McpServerUse] = Field(default_factory=list)
    parallel_tool_calls: bool | None = None
    temperature: float | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Session(BaseModel):
    """A conversation with an agent, optionally for one end user."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: str | None
    metadata: dict[str, Any]
    created_at: datetime


class Message(BaseModel):
    """A session message: the user's, or the agent's answer."""

    id: uuid.UUID
    seq: int
    """Order in the session."""
    session_id: uuid.UUID
    run_id: uuid.UUID | None
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime


class Usage(BaseModel):
    """Tokens and cost."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class PendingCall(BaseModel):
    """A tool call that waits for a human's decision."""

    call_id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """The tool's JSON schema of its arguments (an edit must fit it)."""
    kind: Literal["approval", "question"] = "approval"
    """`approval`: approve, deny or edit; `question` (the model's ask_user): answer or deny."""

    @property
    def question(self) -> str | None:
        """The question of an ask_user call (None for a call to approve)."""
        if self.kind != "question":
            return None
        try:
            asked = json.loads(self.arguments)
        except ValueError:
            return self.arguments
        return str(asked.get("question", self.arguments)) if isinstance(asked, dict) else None


class RequiredAction(BaseModel):
    """What a run in `requires_action` waits for: `client.runs.approve(...)`."""

    type: Literal["approve_tool_calls"] = "approve_tool_calls"
    step: int
    calls: list[PendingCall]
    expires_at: datetime
    """Then the pending calls are denied and the run goes on."""


class Decision(BaseModel):
    """A decision on one pending tool call, for `client.runs.approve`."""

    call_id: str
    decision: Literal["approve", "deny", "edit", "answer"]
    arguments: dict[str, Any] | None = None
    """For edit: the replacement arguments."""
    message: str | None = None
    """For the model: why it was denied, a note with the approval, or the answer."""

    @classmethod
    def approve(cls, call_id: str, message: str | None = None) -> Decision:
        """Run the call as the model wrote it."""
        return cls(call_id=call_id, decision="approve", message=message)

    @classmethod
    def deny(cls, call_id: str, message: str | None = None) -> Decision:
        """Do not run it; the model reads the denial (and `message`)."""
        return cls(call_id=call_id, decision="deny", message=message)

    @classmethod
    def answer(cls, call_id: str, text: str) -> Decision:
        """Answer an ask_user question; the model reads `text` as the call's result."""
        return cls(call_id=call_id, decision="answer", message=text)

    @classmethod
    def edit(cls, call_id: str, arguments: dict[str, Any], message: str | None = None) -> Decision:
        """Run it with `arguments` instead (the server checks them against the schema)."""
        return cls(call_id=call_id, decision="edit", arguments=arguments, message=message)


class Run(BaseModel):
    """One execution of an agent on one user message."""

    id: uuid.UUID
    session_id: uuid.UUID
    agent_id: uuid.UUID
    status: RunStatus
    input: str
    output: str | None
    """The answer, once the run has succeeded."""
    stop_reason: str | None
    """answer, max_steps, cancelled, error or worker_lost."""
    error: dict[str, Any] | None
    """`{"type", "message"}` of a failed run."""
    steps: int
    usage: Usage
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    batch_id: uuid.UUID | None = None
    """The batch this run is an item of, if any."""
    metadata: dict[str, Any]
    required_action: RequiredAction | None = None
    """Set while the run is `requires_action`: the calls waiting for a decision."""
    webhook_url: str | None = None
    """Where the run's events are POSTed (the message's `webhook_url`), if anywhere."""

    @property
    def finished(self) -> bool:
        """Whether the run has ended (succeeded, failed, cancelled or incomplete)."""
        return self.status in FINAL_STATUSES


class ToolCall(BaseModel):
    """A tool call of a step; `result` is None while it has not finished."""

    call_id: str
    position: int
    name: str
    arguments: str
    result: str | None
    is_error: bool
    approval: Literal["pending", "approved", "denied"] | None = None
    """None: the call needed no approval."""


class Step(BaseModel):
    """A model call of a run: the context sent, the output, what the loop decided."""

    step: int
    context: list[dict[str, Any]]
    output: dict[str, Any]
    decision: str
    invalid_attempts: int
    usage: Usage
    model_ms: float
    tool_calls: list[ToolCall] = Field(default_factory=list)
    created_at: datetime
