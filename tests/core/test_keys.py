"""Key format, parsing and hashing."""

from __future__ import annotations

import pytest

from core import keys


def test_generated_key_round_trips() -> None:
    new = keys.generate()
    parsed = keys.parse(new.token)
    assert parsed is not None
    assert parsed.key_id == new.key_id
    assert keys.secret_matches(parsed.secret, new.secret_hash)
    assert parsed.secret.encode() not in new.secret_hash


def test_keys_are_unique() -> None:
    assert len({keys.generate().token for _ in range(200)}) == 200


@pytest.mark.parametrize(
    "token",
    [
        "",
        "am_",
        "sk-abc",
        "am_0123456789ab",
        "am_0123456789ab_short",
        "AM_0123456789ab_" + "a" * 43,
        "am_0123456789ag_" + "a" * 43,
        "am_0123456789ab_" + "a" * 42 + "!",
    ],
)
def test_malformed_keys_do_not_parse(token: str) -> None:
    assert keys.parse(token) is None


def test_wrong_secret_does_not_match() -> None:
    new = keys.generate()
    assert not keys.secret_matches("x" * 43, new.secret_hash)
