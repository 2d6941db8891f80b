"""Session and message shapes: SessionCreate, SessionQuery (the list's parameters),
SessionPublic, MessageCreate, MessagePublic."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from agents.records import ChatSession, Message
from api.schemas.common import Inbound, Metadata
from api.schemas.memories import UserId

MAX_MESSAGE_CHARS = 32_000
"""Longest user message; the request body limit (AGENTMILL_MAX_BODY_BYTES) applies as well."""
MAX_MESSAGE_SEQ = 2**63 - 1
"""The largest seq a message can have (an 8-byte integer column): a larger `after_seq` is 422."""


class SessionCreate(Inbound):
    """Body of POST /v1/agents/{id}/sessions (it may be empty)."""

    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The end user; their memories and core blocks are scoped to it.",
    )
    metadata: Metadata = Field(default_factory=dict)


class SessionQuery(Inbound):
    """Query of GET /v1/agents/{id}/sessions; any other parameter is refused (422)."""

    user_id: UserId | None = Field(default=None, description="Only this end user's sessions.")
    limit: int = Field(default=50, ge=1, le=100, description="Items per page (1-100).")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")


class SessionPublic(BaseModel):
    """A session as the API returns it."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: str | None
    metadata: Metadata
    created_at: datetime

    @classmethod
    def of(cls, chat: ChatSession) -> SessionPublic:
        """From the agents layer's record."""
        return cls(
            id=chat.id,
            agent_id=chat.agent_id,
            user_id=chat.user_id,
            metadata=chat.metadata,
            created_at=chat.created_at,
        )


class MessageCreate(Inbound):
    """Body of POST /v1/sessions/{id}/messages: a user message, which starts a run."""

    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    stream: bool = Field(default=False, description="Answer with the run's events (SSE).")
    wait: bool = Field(default=False, description="Answer when the run ends or at timeout_s.")
    timeout_s: float = Field(default=60.0, gt=0, le=300, description="Longest wait (wait=true).")
    queue: bool = Field(
        default=False, description="Run after the session's active run instead of a 409."
    )
    metadata: Metadata = Field(default_factory=dict, description="Kept on the run.")
    webhook_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Where the run's events (run.succeeded, ...) are POSTed, signed with the "
        "tenant's request signing key.",
    )

    @field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """Refuse a message of only whitespace."""
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("wait")
    @classmethod
    def one_mode(cls, value: bool, info: ValidationInfo) -> bool:
        """Answer with a stream or after waiting, not both."""
        if value and info.data.get("stream"):
            raise ValueError("stream and wait cannot both be true")
        return value


class MessagePublic(BaseModel):
    """A session message: the user's, or the agent's answer."""

    id: uuid.UUID
    seq: int = Field(description="Order in the session; the `after_seq` cursor.")
    session_id: uuid.UUID
    run_id: uuid.UUID | None
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessagePublic:
        """From the agents layer's record."""
        return cls(
            id=message.id,
            seq=message.seq,
            session_id=message.session_id,
            run_id=message.run_id,
            role=message.role,
            content=message.content,
            created_at=message.created_at,
        )
