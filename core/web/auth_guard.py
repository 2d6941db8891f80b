"""What stands between a presented API key and the database: a brief cache of looked-up keys
and a limit on failed lookups per client address.

A key that looked up fine is trusted for `ttl_s` without another lookup, but only while the
caller's revocation signal holds the same epoch (the API's event hub bumps it on every key
revocation notification and every reconnect; while it is down there is no epoch and nothing is
trusted). A bad key is remembered for `ttl_s` too, so repeating it costs no lookup.

Each failed lookup spends a token of its client address's bucket. Once the bucket is empty, a
key this process never saw succeed gets 429 without a lookup, so a flood of made-up keys
cannot reach the database; a key that succeeded within `known_s` is still looked up (its owner
may share the address, e.g. behind a NAT).
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from core.errors import AuthenticationError, TooManyRequests
from core.tenants import Principal
from core.web.rate_limit import MonotonicClock, RateLimiter

KNOWN_S = 900.0
"""How long a key that succeeded may still be looked up from an address that is over its limit."""
MAX_ENTRIES = 10_000
"""Keys remembered, good and bad each (least recently used forgotten first)."""

E = TypeVar("E")


@dataclass(frozen=True)
class _Good:
    principal: Principal
    checked_at: float
    epoch: int | None


@dataclass(frozen=True)
class _Bad:
    message: str
    checked_at: float


def client_key(host: str | None) -> str:
    """The bucket of a client address: the address itself, or its /64 for IPv6 (one host
    commonly holds a whole /64)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AuthGuard:
    """Caches key lookups and limits failed ones per client address (see the module text)."""

    def __init__(
        self,
        *,
        failures_per_minute: int,
        ttl_s: float,
        clock: MonotonicClock = time.monotonic,
        known_s: float = KNOWN_S,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.failures = RateLimiter(failures_per_minute, clock=clock, max_keys=max_entries)
        """Failed lookups per client address."""
        self.ttl_s = ttl_s
        self._known_s = known_s
        self._clock = clock
        self._max_entries = max_entries
        self._good: OrderedDict[bytes, _Good] = OrderedDict()
        self._bad: OrderedDict[bytes, _Bad] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0
        """Lookups made (they reach the database): for tests and benchmarks."""

    def authenticate(
        self,
        token: str,
        address: str,
        lookup: Callable[[str], Principal],
        epoch: int | None,
    ) -> Principal:
        """The principal of `token`: from the cache when fresh, else from `lookup` (which
        raises `AuthenticationError`). `epoch` is the revocation signal's reading taken before
        this call, None while the signal is down. `TooManyRequests` when `address` spent its
        failures and the key is not known."""
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        with self._lock:
            good = self._good.get(digest)
            bad = self._bad.get(digest)
        if good is not None and self._fresh(good.checked_at, now) and _same(good.epoch, epoch):
            return good.principal
        if bad is not None and self._fresh(bad.checked_at, now):
            self.failures.take(address)
            raise AuthenticationError(bad.message)
        known = good is not None and now - good.checked_at < self._known_s
        wait = self.failures.retry_after(address)
        if wait and not known:
            raise TooManyRequests(
                f"too many failed authentication attempts from this address; retry after {wait} s",
                retry_after_s=wait,
            )
        self.lookups += 1
        try:
            principal = lookup(token)
        except AuthenticationError as exc:
            self.failures.take(address)
            with self._lock:
                self._good.pop(digest, None)
                _put(self._bad, digest, _Bad(exc.message, now), self._max_entries)
            raise
        with self._lock:
            self._bad.pop(digest, None)
            _put(self._good, digest, _Good(principal, now, epoch), self._max_entries)
        return principal

    def _fresh(self, checked_at: float, now: float) -> bool:
        return now - checked_at < self.ttl_s


def _put(entries: OrderedDict[bytes, E], digest: bytes, entry: E, most: int) -> None:
    entries[digest] = entry
    entries.move_to_end(digest)
    while len(entries) > most:
        entries.popitem(last=False)


def _same(stored: int | None, current: int | None) -> bool:
    return stored is not None and stored == current
