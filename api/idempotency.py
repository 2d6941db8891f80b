"""`Idempotent`, the dependency of the create routes that honours an `Idempotency-Key` header
(core/idempotency.py): `idem.run(201, make)` does `make()` once per key and replays its
answer to a retry of the same request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine

from api.deps import PrincipalDep, get_engine
from core import idempotency

KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        pattern=r"^[\x20-\x7e]+$",
        description="A retried POST with this key gets the first request's answer, not a "
        "second resource (kept 24 h; the same key with another request is 409).",
    ),
]


class Idempotent:
    """The key of one request, if it sent one."""

    def __init__(
        self, engine: Engine, tenant_id: Any, key: str | None, print_: bytes | None
    ) -> None:
        self.engine, self.tenant_id, self.key, self.print_ = engine, tenant_id, key, print_

    def run(self, status_code: int | Callable[[Any], int], make: Callable[[], BaseModel]) -> Any:
        """`make()`'s model, or for a retried key the first answer (as a JSON response) with
        its status (`status_code`, or a function of the model giving it)."""
        if self.key is None or self.print_ is None:
            return make()
        kept = idempotency.claim(self.engine, self.tenant_id, self.key, self.print_)
        if kept is not None:
            return JSONResponse(kept.body, status_code=kept.status_code)
        try:
            made = make()
        except BaseException:
            idempotency.release(self.engine, self.tenant_id, self.key)
            raise
        body = jsonable_encoder(made)
        status = status_code(made) if callable(status_code) else status_code
        idempotency.answer(self.engine, self.tenant_id, self.key, status, body)
        return made


async def get_idempotent(
    request: Request,
    principal: PrincipalDep,
    engine: Annotated[Engine, Depends(get_engine)],
    key: KeyHeader = None,
) -> Idempotent:
    """The request's key and fingerprint (its method, path, query and body)."""
    if key is None:
        return Idempotent(engine, principal.tenant_id, None, None)
    target = f"{request.url.path}?{request.url.query}"
    print_ = idempotency.fingerprint(request.method, target, await request.body())
    return Idempotent(engine, principal.tenant_id, key, print_)


IdempotentDep = Annotated[Idempotent, Depends(get_idempotent)]
