"""The token bucket's arithmetic on a manual clock, and the X-RateLimit-* headers middleware."""

from __future__ import annotations

import threading

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from core.web.rate_limit import STATE_KEY, Decision, ManualClock, RateLimiter, RateLimitHeaders


def _limiter(per_minute: int, burst: int | None = None) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock(1000.0)
    return RateLimiter(per_minute, burst, clock=clock), clock


def _allowed(limiter: RateLimiter, key: str) -> bool:
    decision = limiter.take(key)
    assert decision is not None
    return decision.allowed


def test_a_full_bucket_allows_burst_requests_back_to_back() -> None:
    limiter, _ = _limiter(60, burst=3)
    decisions = [limiter.take("t") for _ in range(4)]
    assert decisions == [
        Decision(True, 3, 2, 0),
        Decision(True, 3, 1, 0),
        Decision(True, 3, 0, 0),
        Decision(False, 3, 0, 1),
    ]


def test_tokens_come_back_at_the_rate() -> None:
    limiter, clock = _limiter(60, burst=1)  # one token a second
    assert limiter.take("t") == Decision(True, 1, 0, 0)
    clock.advance(0.5)
    assert limiter.take("t") == Decision(False, 1, 0, 1)
    clock.advance(0.5)
    assert limiter.take("t") == Decision(True, 1, 0, 0)


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    limiter, clock = _limiter(30, burst=1)  # a token every 2 s
    limiter.take("t")
    assert limiter.take("t") == Decision(False, 1, 0, 2)
    clock.advance(0.5)  # 1.5 s to go
    assert limiter.take("t") == Decision(False, 1, 0, 2)
    clock.advance(1.0)  # 0.5 s to go
    assert limiter.take("t") == Decision(False, 1, 0, 1)
    clock.advance(0.5)
    assert limiter.take("t") == Decision(True, 1, 0, 0)


def test_a_fast_rate_still_says_at_least_one_second() -> None:
    limiter, _ = _limiter(6000, burst=1)  # a token every 10 ms
    limiter.take("t")
    assert limiter.take("t") == Decision(False, 1, 0, 1)


def test_refused_requests_do_not_spend_tokens() -> None:
    limiter, clock = _limiter(60, burst=1)
    limiter.take("t")
    for _ in range(10):
        assert _allowed(limiter, "t") is False
    clock.advance(1.0)
    assert limiter.take("t") == Decision(True, 1, 0, 0)


def test_an_idle_bucket_fills_up_to_burst_only() -> None:
    limiter, clock = _limiter(60, burst=2)
    limiter.take("t")
    clock.advance(3600)
    assert [_allowed(limiter, "t") for _ in range(3)] == [True, True, False]


def test_a_clock_going_back_adds_nothing() -> None:
    limiter, clock = _limiter(60, burst=1)
    limiter.take("t")
    clock.advance(-5)
    assert limiter.take("t") == Decision(False, 1, 0, 1)
    clock.advance(5)  # back where it was: no time has passed for the bucket
    assert limiter.take("t") == Decision(False, 1, 0, 1)
    clock.advance(1)
    assert limiter.take("t") == Decision(True, 1, 0, 0)


def test_keys_have_buckets_of_their_own() -> None:
    limiter, _ = _limiter(60, burst=1)
    assert limiter.take("a") == Decision(True, 1, 0, 0)
    assert limiter.take("a") == Decision(False, 1, 0, 1)
    assert limiter.take("b") == Decision(True, 1, 0, 0)


def test_burst_defaults_to_a_minutes_worth() -> None:
    limiter, _ = _limiter(120)
    assert limiter.burst == 120
    assert limiter.take("t") == Decision(True, 120, 119, 0)


def test_zero_per_minute_disables() -> None:
    limiter, _ = _limiter(0, burst=1)
    assert limiter.enabled is False
    assert all(limiter.take("t") is None for _ in range(1000))


@pytest.mark.parametrize(("per_minute", "burst"), [(-1, None), (60, 0)])
def test_nonsense_is_refused(per_minute: int, burst: int | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(per_minute, burst)


def test_concurrent_takes_spend_each_token_once() -> None:
    limiter, _ = _limiter(60, burst=500)  # the clock stands still: no refill
    allowed = []
    lock = threading.Lock()

    def worker() -> None:
        mine = sum(1 for _ in range(100) if _allowed(limiter, "t"))
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 500


def _app() -> TestClient:
    async def decided(request: Request) -> PlainTextResponse:
        setattr(request.state, STATE_KEY, Decision(True, 10, 7, 0))
        return PlainTextResponse("ok")

    async def undecided(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/decided", decided), Route("/undecided", undecided)])
    app.add_middleware(RateLimitHeaders)
    return TestClient(app)


def test_the_middleware_reports_the_decision() -> None:
    with _app() as client:
        response = client.get("/decided")
    assert response.headers["X-RateLimit-Limit"] == "10"
    assert response.headers["X-RateLimit-Remaining"] == "7"
    assert response.text == "ok"


def test_the_middleware_leaves_other_responses_alone() -> None:
    with _app() as client:
        response = client.get("/undecided")
    assert "X-RateLimit-Limit" not in response.headers
    assert "X-RateLimit-Remaining" not in response.headers


def test_retry_after_reads_a_bucket_without_spending_it() -> None:
    limiter, clock = _limiter(60, burst=2)
    assert limiter.retry_after("t") == 0  # never seen: full
    assert limiter.keys_kept == 0  # and peeking keeps no bucket
    assert _allowed(limiter, "t")
    assert _allowed(limiter, "t")
    assert limiter.retry_after("t") == 1
    assert limiter.retry_after("t") == 1  # still nothing spent
    clock.advance(1.0)
    assert limiter.retry_after("t") == 0
    assert _allowed(limiter, "t")


def test_past_max_keys_the_least_recently_used_bucket_is_forgotten() -> None:
    clock = ManualClock(0.0)
    limiter = RateLimiter(60, 1, clock=clock, max_keys=2)
    assert _allowed(limiter, "a")
    assert _allowed(limiter, "b")
    assert not _allowed(limiter, "a")  # "a" used last: "b" is the oldest now
    assert _allowed(limiter, "c")
    assert limiter.keys_kept == 2
    assert not _allowed(limiter, "a")  # kept, still empty
    assert _allowed(limiter, "b")  # forgotten, so full again
