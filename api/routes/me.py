"""Who the caller is: lets a client check its key and learn its tenant."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import PrincipalDep
from core.web.errors import error_responses

router = APIRouter(prefix="/v1", tags=["auth"], responses=error_responses(401, 429))


class MePublic(BaseModel):
    """The tenant and key behind the request."""

    tenant_id: uuid.UUID
    tenant_name: str
    key_id: str


@router.get("/me")
def me(principal: PrincipalDep) -> MePublic:
    """Return the tenant the presented API key belongs to."""
    return MePublic(
        tenant_id=principal.tenant_id,
        tenant_name=principal.tenant_name,
        key_id=principal.key_id,
    )
