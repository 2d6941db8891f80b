"""The key cache and the failed-authentication limit, on a manual clock with a counting
lookup (the routes' tests in tests/api/test_auth.py use the real database)."""

from __future__ import annotations

import uuid

import pytest

from core.errors import AuthenticationError, TooManyRequests
from core.tenants import Principal
from core.web.auth_guard import AuthGuard, client_key
from core.web.rate_limit import ManualClock

GOOD = "am_000000000001_" + "g" * 43
PRINCIPAL = Principal(tenant_id=uuid.uuid4(), tenant_name="acme", key_id="000000000001")


class Lookup:
    """Resolves GOOD (unless revoked), refuses everything else; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.revoked = False

    def __call__(self, token: str) -> Principal:
        self.calls += 1
        if token == GOOD and not self.revoked:
            return PRINCIPAL
        raise AuthenticationError("API key has been revoked" if token == GOOD else "invalid")


def _guard(failures: int = 3, ttl_s: float = 10.0) -> tuple[AuthGuard, ManualClock, Lookup]:
    clock = ManualClock(100.0)
    return AuthGuard(failures_per_minute=failures, ttl_s=ttl_s, clock=clock), clock, Lookup()


def _fake(i: int) -> str:
    return f"am_{i:012x}_" + "x" * 43


def test_a_good_key_is_looked_up_once_per_ttl_at_one_epoch() -> None:
    guard, clock, lookup = _guard()
    for _ in range(5):
        assert guard.authenticate(GOOD, "1.2.3.4", lookup, epoch=1) == PRINCIPAL
    assert lookup.calls == 1
    clock.advance(10.0)
    guard.authenticate(GOOD, "1.2.3.4", lookup, epoch=1)
    assert lookup.calls == 2


def test_a_new_epoch_or_none_means_a_new_lookup() -> None:
    guard, _, lookup = _guard()
    guard.authenticate(GOOD, "a", lookup, epoch=1)
    guard.authenticate(GOOD, "a", lookup, epoch=2)  # a revocation was heard since
    assert lookup.calls == 2
    guard.authenticate(GOOD, "a", lookup, epoch=None)  # the signal is down: trust nothing
    guard.authenticate(GOOD, "a", lookup, epoch=None)
    assert lookup.calls == 4


def test_a_revoked_key_is_refused_from_the_next_epoch_on() -> None:
    guard, _, lookup = _guard()
    guard.authenticate(GOOD, "a", lookup, epoch=1)
    lookup.revoked = True
    with pytest.raises(AuthenticationError, match="revoked"):
        guard.authenticate(GOOD, "a", lookup, epoch=2)
    with pytest.raises(AuthenticationError, match="revoked"):  # cached as bad now
        guard.authenticate(GOOD, "a", lookup, epoch=2)
    assert lookup.calls == 2


def test_an_address_out_of_failures_gets_429_without_lookups() -> None:
    guard, clock, lookup = _guard(failures=3)
    for i in range(3):
        with pytest.raises(AuthenticationError):
            guard.authenticate(_fake(i), "6.6.6.6", lookup, epoch=1)
    with pytest.raises(TooManyRequests, match="failed authentication") as refused:
        guard.authenticate(_fake(99), "6.6.6.6", lookup, epoch=1)
    assert refused.value.retry_after_s == 20  # 3 per minute: one back every 20 s
    assert lookup.calls == 3
    with pytest.raises(AuthenticationError):  # another address is not affected
        guard.authenticate(_fake(100), "7.7.7.7", lookup, epoch=1)
    clock.advance(20.0)
    with pytest.raises(AuthenticationError):  # a token came back: one more lookup
        guard.authenticate(_fake(101), "6.6.6.6", lookup, epoch=1)
    assert lookup.calls == 5


def test_a_known_key_still_works_from_an_address_out_of_failures() -> None:
    guard, clock, lookup = _guard(failures=2, ttl_s=1.0)
    guard.authenticate(GOOD, "10.0.0.1", lookup, epoch=1)
    for i in range(2):
        with pytest.raises(AuthenticationError):
            guard.authenticate(_fake(i), "10.0.0.1", lookup, epoch=1)
    assert guard.authenticate(GOOD, "10.0.0.1", lookup, epoch=1) == PRINCIPAL  # cached
    clock.advance(5.0)  # stale: looked up again despite the address's state
    assert guard.authenticate(GOOD, "10.0.0.1", lookup, epoch=1) == PRINCIPAL
    assert lookup.calls == 4
    with pytest.raises(TooManyRequests):
        guard.authenticate(_fake(7), "10.0.0.1", lookup, epoch=1)


def test_zero_failures_disables_the_limit_and_zero_ttl_the_cache() -> None:
    guard, _, lookup = _guard(failures=0, ttl_s=0.0)
    for i in range(50):
        with pytest.raises(AuthenticationError):
            guard.authenticate(_fake(i), "a", lookup, epoch=1)
    guard.authenticate(GOOD, "a", lookup, epoch=1)
    guard.authenticate(GOOD, "a", lookup, epoch=1)
    assert lookup.calls == 52


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("testclient", "testclient"),
        (None, "unknown"),
    ],
)
def test_client_keys_group_an_ipv6_host_by_its_64(host: str | None, key: str) -> None:
    assert client_key(host) == key
