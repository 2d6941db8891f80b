"""Batches: create (JSON or a JSONL upload), read, list, results (NDJSON), cancel."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from agents.batches.facade import Batches
from agents.records import BatchItem
from api.deps import BatchesDep, PrincipalDep, SettingsDep, WebhooksDep, parse_id
from api.idempotency import IdempotentDep
from api.readiness import DiskRoom
from api.request_webhooks import check_request_webhook
from api.schemas.batches import (
    CREATE_OPENAPI,
    JSONL_TYPES,
    BatchCreate,
    BatchOptions,
    BatchPublic,
    BatchResult,
    inline_schema,
    parse_jsonl,
)
from api.schemas.common import Cursor, Limit, Page, by_time, decode_cursor, invalid, keyset_page
from core.errors import NotFound
from core.web.errors import error_responses

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=error_responses(401, 422, 429))

POLL_S = 1.0
"""How often a `wait` results stream looks for newly finished items."""
KEEPALIVE_S = 15.0
"""An idle `wait` stream sends an empty line this often, so proxies keep it open."""
PAGE = 100
"""Items read per query while streaming results."""


def batch_id(batch_id: Annotated[str, Path(description="A batch id.")]) -> uuid.UUID:
    """The `{batch_id}` of the path."""
    return parse_id("batch", batch_id)


BatchId = Annotated[uuid.UUID, Depends(batch_id)]


def _errors(exc: ValidationError, where: str) -> RequestValidationError:
    """pydantic's errors as the API's 422 (or 400 for malformed JSON), located in `where`."""
    return RequestValidationError(
        [{**error, "loc": (where, *error["loc"])} for error in exc.errors(include_url=False)]
    )


def _body(content_type: str, raw: bytes, options: dict[str, object]) -> BatchCreate:
    """The batch a request asks for: a JSON body, or a JSONL upload with the options given as
    query parameters (`options`: those sent)."""
    if content_type in JSONL_TYPES:
        items = parse_jsonl(raw)
        try:
            valid = BatchOptions.model_validate(options)
        except ValidationError as exc:
            raise _errors(exc, "query") from None
        return BatchCreate(**valid.model_dump(), items=items)
    if content_type not in ("application/json", ""):
        known = ", ".join(("application/json", *JSONL_TYPES))
        raise invalid("content-type", f"send one of {known}", where="header", value=content_type)
    if options:  # not silently ignored
        name = next(iter(options))
        raise invalid(name, "query options are for JSONL uploads; use the body", where="query")
    try:
        return BatchCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise _errors(exc, "body") from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=CREATE_OPENAPI,
    dependencies=[DiskRoom],
    response_model=BatchPublic,
    responses=error_responses(400, 404, 409, 413, 507),
)
async def create_batch(
    request: Request,
    principal: PrincipalDep,
    batches: BatchesDep,
    idem: IdempotentDep,
    hooks: WebhooksDep,
    settings: SettingsDep,
    agent_id: Annotated[str | None, Query(description="JSONL upload: the agent.")] = None,
    concurrency: Annotated[
        int | None, Query(ge=1, le=64, description="JSONL upload (default 4).")
    ] = None,
    max_attempts: Annotated[
        int | None, Query(ge=1, le=5, description="JSONL upload (default 2).")
    ] = None,
    webhook_url: Annotated[
        str | None,
        Query(min_length=1, max_length=2048, description="JSONL upload: the batch's webhook."),
    ] = None,
) -> Any:
    """Run many inputs on one agent, each in a session of its own, `concurrency` at a time.
    The body is JSON (`BatchCreate`) or JSONL (`application/x-ndjson`: one item per line,
    the options as query parameters); a bad line is a 422 naming it, and nothing is created."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    sent: dict[str, object] = {
        "agent_id": agent_id,
        "concurrency": concurrency,
        "max_attempts": max_attempts,
        "webhook_url": webhook_url,
    }
    options = {name: value for name, value in sent.items() if value is not None}
    new = _body(content_type, await request.body(), options).new_batch()
    await asyncio.to_thread(
        check_request_webhook, new.webhook_url, settings, hooks, principal.tenant_id
    )

    def make() -> BatchPublic:
        return BatchPublic.of(batches.create(principal.tenant_id, new))

    return await asyncio.to_thread(idem.run, 201, make)


@router.get("")
def list_batches(
    principal: PrincipalDep, batches: BatchesDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[BatchPublic]:
    """The tenant's batches, newest first, `limit` per page."""
    before = decode_cursor(cursor) if cursor is not None else None
    found = batches.page(principal.tenant_id, limit=limit + 1, before=before)
    return keyset_page(found, limit, by_time, BatchPublic.of)


@router.get("/{batch_id}", responses=error_responses(404))
def get_batch(principal: PrincipalDep, batch_id: BatchId, batches: BatchesDep) -> BatchPublic:
    """A batch's status, counts per item state and usage totals."""
    return BatchPublic.of(batches.get(principal.tenant_id, batch_id))


@router.post("/{batch_id}/cancel", responses=error_responses(404))
def cancel_batch(principal: PrincipalDep, batch_id: BatchId, batches: BatchesDep) -> BatchPublic:
    """Stop a batch: pending and queued items are cancelled now, running ones at their
    worker's next check; the batch ends `cancelled` when none is left running."""
    return BatchPublic.of(batches.cancel(principal.tenant_id, batch_id))


@router.get(
    "/{batch_id}/results",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {"schema": inline_schema(BatchResult)}},
            "description": "One BatchResult JSON object per line.",
        },
        **error_responses(404),
    },
)
async def batch_results(
    principal: PrincipalDep,
    batch_id: BatchId,
    batches: BatchesDep,
    wait: Annotated[
        bool, Query(description="Keep streaming newly finished items until the batch ends.")
    ] = False,
) -> StreamingResponse:
    """Every finished item, one JSON object per line in position order; with `wait`, then each
    item as it finishes until the batch has ended (empty lines are keep-alives)."""
    await asyncio.to_thread(batches.get, principal.tenant_id, batch_id)  # 404 before 200
    return StreamingResponse(
        _results(batches, principal.tenant_id, batch_id, wait=wait),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _page(
    batches: Batches, tenant_id: uuid.UUID, batch_id: uuid.UUID, after: int, sent: set[int]
) -> list[BatchItem]:
    return batches.finished_items(tenant_id, batch_id, after=after, skip=sent, limit=PAGE)


async def _results(
    batches: Batches, tenant_id: uuid.UUID, batch_id: uuid.UUID, *, wait: bool
) -> AsyncIterator[str]:
    """Final items not sent yet, page by page; with `wait`, again every POLL_S until a round
    that began after the batch had ended (no item can finish after that)."""
    sent: set[int] = set()
    last_sent = time.monotonic()
    while True:
        try:
            batch = await asyncio.to_thread(batches.get, tenant_id, batch_id)
            ended = batch.status != "running"
            after = -1
            while True:
                page = await asyncio.to_thread(_page, batches, tenant_id, batch_id, after, sent)
                for item in page:
                    yield BatchResult.of(item).model_dump_json() + "\n"
                    sent.add(item.position)
                    last_sent = time.monotonic()
                if len(page) < PAGE:
                    break
                after = page[-1].position
        except NotFound:  # deleted with its agent while followed
            return
        except (DBAPIError, PoolTimeout) as exc:
            if not wait:
                raise
            log.warning("results of batch %s: read failed (%s)", batch_id, exc)
            ended = False
        if ended or not wait:
            return
        if time.monotonic() - last_sent >= KEEPALIVE_S:
            yield "\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_S)
