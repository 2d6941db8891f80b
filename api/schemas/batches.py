"""Batch bodies: BatchItemIn, BatchCreate, BatchPublic (with its counts), BatchResult (one
line of the results stream), and the JSONL form of a creation."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from agents.records import (
    Batch,
    BatchCounts,
    BatchItem,
    BatchStatus,
    ItemStatus,
    NewBatch,
    NewBatchItem,
)
from api.schemas.common import Inbound, Metadata, invalid
from api.schemas.runs import UsagePublic
from api.schemas.sessions import MAX_MESSAGE_CHARS

MAX_BATCH_ITEMS = 1000
"""Most items per batch; the request body limit (AGENTMILL_MAX_BODY_BYTES) applies as well."""
JSONL_TYPES = ("application/x-ndjson", "application/jsonl")
"""Content types of a JSONL upload (one item per line)."""


class BatchItemIn(Inbound):
    """One input: a user message run in a session of its own."""

    input: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    user_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="The end user of its session."
    )
    metadata: Metadata = Field(default_factory=dict, description="Kept on the item and its run.")

    @field_validator("input")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """Refuse an input of only whitespace."""
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def item(self) -> NewBatchItem:
        """The agents layer's form."""
        return NewBatchItem(input=self.input, user_id=self.user_id, metadata=self.metadata)


class BatchOptions(Inbound):
    """What a batch is besides its items (query parameters of a JSONL upload)."""

    agent_id: uuid.UUID = Field(description="The agent that runs every item.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Most items running at once.")
    max_attempts: int = Field(
        default=2, ge=1, le=5, description="Most runs per item, retries of retryable failures."
    )
    metadata: Metadata = Field(default_factory=dict)
    webhook_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Where the batch's end (batch.completed, batch.cancelled) is POSTed, "
        "signed with the tenant's request signing key.",
    )


class BatchCreate(BatchOptions):
    """Body of POST /v1/batches as JSON."""

    items: list[BatchItemIn] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)

    def new_batch(self) -> NewBatch:
        """The agents layer's form."""
        return NewBatch(
            agent_id=self.agent_id,
            items=tuple(item.item() for item in self.items),
            concurrency=self.concurrency,
            max_attempts=self.max_attempts,
            metadata=self.metadata,
            webhook_url=self.webhook_url,
        )


def parse_jsonl(body: bytes) -> list[BatchItemIn]:
    """The items of a JSONL upload, one object per non-blank line; a 422 naming the first bad
    line (`param` "line N", 1-based) otherwise, so nothing is created from a half-good file."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("items", "the upload is not UTF-8 text") from None
    items: list[BatchItemIn] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise invalid(f"line {number}", f"not valid JSON ({exc.msg})") from None
        try:
            items.append(BatchItemIn.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join([f"line {number}", *(str(p) for p in first["loc"])])
            raise invalid(where, first["msg"]) from None
        if len(items) > MAX_BATCH_ITEMS:
            raise invalid("items", f"at most {MAX_BATCH_ITEMS} items per batch")
    if not items:
        raise invalid("items", "the upload holds no items")
    return items


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` substituted, to embed in the OpenAPI document
    (whose `$ref`s resolve against the document, not the embedded schema)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


CREATE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(BatchCreate)},
            **{
                kind: {
                    "schema": {
                        "type": "string",
                        "description": "One BatchItemIn JSON object per line; the other "
                        "fields come as query parameters.",
                    }
                }
                for kind in JSONL_TYPES
            },
        },
    }
}
"""The request body of POST /v1/batches as documented: JSON, or JSONL (the route reads the
body itself, since FastAPI binds one content type per body)."""


class BatchCountsPublic(BaseModel):
    """Items per state."""

    pending: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    total: int

    @classmethod
    def of(cls, counts: BatchCounts) -> BatchCountsPublic:
        """From the agents layer's record."""
        return cls(
            pending=counts.pending,
            queued=counts.queued,
            running=counts.running,
            succeeded=counts.succeeded,
            failed=counts.failed,
            cancelled=counts.cancelled,
            total=counts.total,
        )


class BatchPublic(BaseModel):
    """A batch with its progress and usage."""

    id: uuid.UUID
    agent_id: uuid.UUID
    status: BatchStatus
    concurrency: int
    max_attempts: int
    cancel_requested: bool
    counts: BatchCountsPublic
    usage: UsagePublic
    metadata: Metadata
    webhook_url: str | None = None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, batch: Batch) -> BatchPublic:
        """From the agents layer's record."""
        return cls(
            id=batch.id,
            agent_id=batch.agent_id,
            status=batch.status,
            concurrency=batch.concurrency,
            max_attempts=batch.max_attempts,
            cancel_requested=batch.cancel_requested,
            counts=BatchCountsPublic.of(batch.counts),
            usage=UsagePublic.of(batch.usage),
            metadata=batch.metadata,
            webhook_url=batch.webhook_url,
            created_at=batch.created_at,
            finished_at=batch.finished_at,
        )


class BatchResult(BaseModel):
    """One line of GET /v1/batches/{id}/results: a finished item."""

    position: int = Field(description="0-based order of the item as submitted.")
    input: str
    user_id: str | None
    metadata: Metadata
    status: ItemStatus
    output: str | None
    error: dict[str, Any] | None = Field(description="The latest attempt's {type, message}.")
    usage: UsagePublic = Field(description="Summed over every attempt.")
    run_id: uuid.UUID | None = Field(description="The latest attempt's run.")
    attempts: int
    finished_at: datetime | None

    @classmethod
    def of(cls, item: BatchItem) -> BatchResult:
        """From the agents layer's record."""
        return cls(
            position=item.position,
            input=item.input,
            user_id=item.user_id,
            metadata=item.metadata,
            status=item.status,
            output=item.output,
            error=item.error,
            usage=UsagePublic.of(item.usage),
            run_id=item.run_id,
            attempts=item.attempts,
            finished_at=item.finished_at,
        )
