"""Errors raised by the SDK. Every one derives from `AgentmillError`:

AgentmillError                      anything the SDK raises
 ├── APIConnectionError             no answer from the server (after the retries)
 │    └── APITimeoutError           ... because a timeout passed
 ├── RunTimeoutError                send/wait: the run had not ended in time (`.run`)
 ├── BatchTimeoutError              batches.wait: the batch had not ended in time (`.batch`)
 └── AgentmillAPIError              a non-2xx answer: status, type, message, param, retry_after
      ├── BadRequestError           400 invalid_request
      ├── AuthenticationError       401 authentication_error
      ├── NotFoundError             404 not_found
      ├── ConflictError             409 conflict
      ├── PayloadTooLargeError      413 payload_too_large
      ├── UnprocessableEntityError  422 validation_error
      ├── RateLimitError            429
      └── APIError                  5xx: the server (or a proxy before it) failed
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx

from agentmill.batch_models import Batch
from agentmill.models import Run


class AgentmillError(Exception):
    """Root of every error the SDK raises."""


class APIConnectionError(AgentmillError):
    """The request got no answer: connection refused or dropped (the httpx error is the cause)."""


class APITimeoutError(APIConnectionError):
    """The request got no answer within the client's timeout."""


class RunTimeoutError(AgentmillError):
    """The run had not ended when the caller's timeout passed; it goes on on the server."""

    def __init__(self, run: Run, timeout_s: float) -> None:
        super().__init__(f"run {run.id} still {run.status} after {timeout_s:.1f} s")
        self.run = run
        self.timeout_s = timeout_s


class BatchTimeoutError(AgentmillError):
    """The batch had not ended when the caller's timeout passed; it goes on on the server."""

    def __init__(self, batch: Batch, timeout_s: float) -> None:
        done = batch.counts.finished
        super().__init__(
            f"batch {batch.id} still {batch.status} after {timeout_s:.1f} s "
            f"({done}/{batch.counts.total} items finished)"
        )
        self.batch = batch
        self.timeout_s = timeout_s


class AgentmillAPIError(AgentmillError):
    """The server answered with an error envelope (or something that is not one)."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        param: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.message = message
        self.param = param
        self.retry_after = retry_after


class BadRequestError(AgentmillAPIError):
    """Malformed request (400)."""


class AuthenticationError(AgentmillAPIError):
    """The API key is missing, malformed, unknown or revoked (401)."""


class NotFoundError(AgentmillAPIError):
    """The resource does not exist for this key's tenant (404)."""


class ConflictError(AgentmillAPIError):
    """The request clashes with current state: a taken name, a busy session, a reused
    Idempotency-Key, deleting an agent with active runs (409)."""


class PayloadTooLargeError(AgentmillAPIError):
    """The request body is over the server's limit (413)."""


class UnprocessableEntityError(AgentmillAPIError):
    """A field failed validation; `param` names it (422)."""


class RateLimitError(AgentmillAPIError):
    """Too many requests (429); `retry_after` says how long the server asks to wait."""


class APIError(AgentmillAPIError):
    """The server failed (5xx); retried automatically for idempotent calls."""


_BY_STATUS: dict[int, type[AgentmillAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the `Retry-After` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_for(response: httpx.Response) -> AgentmillAPIError:
    """The error matching a non-2xx response (its body must have been read)."""
    try:
        error = response.json()["error"]
        type_, message, param = str(error["type"]), str(error["message"]), error.get("param")
    except (ValueError, KeyError, TypeError):
        type_, message, param = "http_error", response.text[:200] or response.reason_phrase, None
    status = response.status_code
    cls = _BY_STATUS.get(status, APIError if status >= 500 else AgentmillAPIError)
    return cls(status, type_, message, param, retry_after=retry_after(response))


def raise_for_error(response: httpx.Response) -> None:
    """Raise the matching error for a non-2xx response."""
    if not response.is_success:
        raise error_for(response)


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    """The SDK's error for an httpx transport failure (raise it `from exc`)."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"timed out: {exc}")
    return APIConnectionError(f"connection failed: {exc}")
