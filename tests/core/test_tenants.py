"""Tenants and keys in the real database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from core import keys
from core.db import transaction
from core.errors import AuthenticationError, NotFound, UserError
from core.models import ApiKey
from core.tenants import (
    authenticate,
    count_tenants,
    create_key,
    ensure_tenant,
    list_keys,
    revoke_key,
)


def test_ensure_tenant_is_idempotent(engine: Engine) -> None:
    with transaction(engine) as session:
        first, created = ensure_tenant(session, "acme")
        again, created_again = ensure_tenant(session, "acme")
        assert (first, created, created_again) == (again, True, False)
        assert count_tenants(session) == 1


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "ünï"])
def test_invalid_tenant_names(engine: Engine, name: str) -> None:
    with pytest.raises(UserError, match="tenant name"), transaction(engine) as session:
        ensure_tenant(session, name)


def test_only_a_hash_is_stored_and_the_key_resolves_its_tenant(engine: Engine) -> None:
    with transaction(engine) as session:
        acme, _ = ensure_tenant(session, "acme")
        other, _ = ensure_tenant(session, "other")
        token = create_key(session, acme)
        create_key(session, other)
    parsed = keys.parse(token)
    assert parsed is not None
    with transaction(engine) as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.key_id == parsed.key_id)).one()
        assert parsed.secret.encode() not in stored.secret_hash
        assert stored.secret_hash == keys.hash_secret(parsed.secret)
        principal = authenticate(session, token)
    assert principal.tenant_id == acme
    assert principal.tenant_name == "acme"
    assert principal.key_id == parsed.key_id


def test_authentication_failures(engine: Engine) -> None:
    with transaction(engine) as session:
        tenant, _ = ensure_tenant(session, "acme")
        token = create_key(session, tenant)
    parsed = keys.parse(token)
    assert parsed is not None
    forged = f"am_{parsed.key_id}_{'A' * 43}"
    unknown = keys.generate().token
    cases = [
        (None, "missing"),
        ("", "missing"),
        ("nope", "malformed"),
        (forged, "invalid"),
        (unknown, "invalid"),
    ]
    for presented, message in cases:
        with pytest.raises(AuthenticationError, match=message), transaction(engine) as session:
            authenticate(session, presented)
    with transaction(engine) as session:
        assert revoke_key(session, token) == parsed.key_id
    with pytest.raises(AuthenticationError, match="revoked"), transaction(engine) as session:
        authenticate(session, token)


def test_revoke_is_idempotent_and_unknown_is_not_found(engine: Engine) -> None:
    with transaction(engine) as session:
        tenant, _ = ensure_tenant(session, "acme")
        token = create_key(session, tenant, name="ci")
    parsed = keys.parse(token)
    assert parsed is not None
    with transaction(engine) as session:
        revoke_key(session, parsed.key_id)
        first = list_keys(session)[0].revoked_at
        revoke_key(session, parsed.key_id)
        assert list_keys(session)[0].revoked_at == first
    with pytest.raises(NotFound), transaction(engine) as session:
        revoke_key(session, "000000000000")


def test_list_keys_filters_by_tenant_and_never_shows_secrets(engine: Engine) -> None:
    with transaction(engine) as session:
        a, _ = ensure_tenant(session, "a")
        b, _ = ensure_tenant(session, "b")
        create_key(session, a, name="one")
        create_key(session, b, name="two")
        assert [k.name for k in list_keys(session, "a")] == ["one"]
        assert {k.tenant_name for k in list_keys(session)} == {"a", "b"}
        assert not hasattr(list_keys(session)[0], "secret_hash")
