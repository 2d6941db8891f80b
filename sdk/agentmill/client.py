"""The synchronous client."""

from __future__ import annotations

from types import TracebackType

import httpx

from agentmill.errors import raise_for_error
from agentmill.models import Me

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Client:
    """A connection to one agentmill server, authenticated with one API key."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def healthy(self) -> bool:
        """Whether the server process answers `/healthz`."""
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def ready(self) -> bool:
        """Whether the server and its database are ready (`/readyz` is 200)."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def me(self) -> Me:
        """The tenant this client's key belongs to; raises `AuthenticationError` if invalid."""
        response = self._http.get("/v1/me")
        raise_for_error(response)
        return Me.model_validate(response.json())

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
