"""Response models of the SDK (mirrors of the server's public schemas)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class Me(BaseModel):
    """The tenant and key behind the client's API key."""

    tenant_id: uuid.UUID
    tenant_name: str
    key_id: str
