"""Errors built from the server's envelope."""

from __future__ import annotations

import agentmill
import httpx
import pytest
from agentmill.errors import error_for, retry_after

from tests.sdk.fakes import error_body


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, agentmill.BadRequestError),
        (401, agentmill.AuthenticationError),
        (404, agentmill.NotFoundError),
        (409, agentmill.ConflictError),
        (413, agentmill.PayloadTooLargeError),
        (422, agentmill.UnprocessableEntityError),
        (429, agentmill.RateLimitError),
        (500, agentmill.APIError),
        (503, agentmill.APIError),
        (405, agentmill.AgentmillAPIError),
    ],
)
def test_each_status_has_its_class(status: int, cls: type[agentmill.AgentmillAPIError]) -> None:
    error = error_for(httpx.Response(status, json=error_body("some_type", "went wrong", "x.y")))
    assert type(error) is cls
    assert (error.status, error.type, error.message, error.param) == (
        status,
        "some_type",
        "went wrong",
        "x.y",
    )


def test_a_body_that_is_not_an_envelope_still_gives_an_error() -> None:
    error = error_for(httpx.Response(502, text="<html>bad gateway</html>"))
    assert isinstance(error, agentmill.APIError)
    assert (error.type, error.message) == ("http_error", "<html>bad gateway</html>")
    assert error.param is None


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    dated = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after(dated) == 0.0  # in the past
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None
    error = error_for(httpx.Response(429, headers={"Retry-After": "2"}, json=error_body("r", "m")))
    assert error.retry_after == 2.0
