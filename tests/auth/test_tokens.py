"""API tokens in the store: shape, hashing, expiry, revocation, names, scope."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from lineage.auth import tokens
from lineage.auth.errors import Unauthenticated
from lineage.errors import BadRequest, Conflict, NotFound


def _create(conn, name="svc", **kw):
    kw.setdefault("principal", "svc@example.com")
    kw.setdefault("roles", ["emitter"])
    kw.setdefault("created_by", "admin")
    return tokens.create(conn, name=name, **kw)


def test_a_token_is_recognisable_random_and_stored_only_as_a_hash(db):
    with db.connection() as conn:
        row, secret = _create(conn)
        _, other = _create(conn, "svc2")
        stored = conn.execute("SELECT row_to_json(t)::text FROM api_tokens t").fetchall()
    prefix, token_id, body = secret.split("_", 2)
    assert prefix == "lin" and token_id == row.id and len(body) == 43  # 32 random bytes, url-safe base64
    assert secret != other and secret.split("_", 2)[2] != other.split("_", 2)[2]
    assert bytes(row.secret_sha256) == hashlib.sha256(body.encode()).digest()
    assert not any(body in r[0] for r in stored), "the secret itself must never be stored"


def test_authenticates_as_the_normalised_principal_with_its_roles_and_scope(db):
    with db.connection() as conn:
        _, secret = _create(conn, principal="  Airflow@Example.COM ", roles=["emitter", "viewer"], namespaces=["ml", "etl"])
        p = tokens.authenticate(conn, secret)
    assert p.name == "airflow@example.com" and p.credential == "token:svc"
    assert p.roles == {"emitter", "viewer"} and p.namespaces == {"ml", "etl"}


@pytest.mark.parametrize("mangle", [
    lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # right id, wrong secret
    lambda s: "lin_" + "0" * 12 + "_" + s.split("_", 2)[2],  # right secret, unknown id
    lambda s: s.upper(),
    lambda s: s + "x",
    lambda s: s.replace("lin_", "lin-"),
    lambda s: "lin_",
])
def test_a_wrong_or_malformed_token_authenticates_nobody(db, mangle):
    with db.connection() as conn:
        _, secret = _create(conn)
        with pytest.raises(Unauthenticated):
            tokens.authenticate(conn, mangle(secret))


def test_an_expired_token_is_refused_and_says_so(db):
    with db.connection() as conn:
        _, secret = _create(conn, expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
        assert tokens.authenticate(conn, secret).name == "svc@example.com"
        with pytest.raises(Unauthenticated, match="expired"):
            tokens.authenticate(conn, secret, now=datetime.now(timezone.utc) + timedelta(hours=2))


def test_a_revoked_token_is_refused_and_its_name_is_never_reused(db):
    with db.connection() as conn:
        _, secret = _create(conn)
        row = tokens.revoke(conn, "svc", "dpo@example.com")
        assert row.revoked_by == "dpo@example.com" and row.revoked_at is not None
        with pytest.raises(Unauthenticated, match="revoked"):
            tokens.authenticate(conn, secret)
        with pytest.raises(Conflict, match="already revoked"):
            tokens.revoke(conn, "svc", "dpo@example.com")
        with pytest.raises(Conflict, match="never reused"):
            _create(conn)
        with pytest.raises(NotFound):
            tokens.revoke(conn, "nobody", "x")


@pytest.mark.parametrize("kw, field", [
    ({"roles": []}, "roles"),
    ({"roles": ["superuser"]}, "roles"),
    ({"principal": "ml-lead@example.com\u200b"}, "principal"),
    ({"namespaces": []}, "namespaces"),
    ({"expires_at": datetime(2020, 1, 1, tzinfo=timezone.utc)}, "expiresAt"),
    ({"name": "has space"}, "name"),
    ({"name": ""}, "name"),
])
def test_bad_token_requests_are_refused_naming_the_field(db, kw, field):
    with db.connection() as conn, pytest.raises(BadRequest) as err:
        _create(conn, **{"name": kw.pop("name", "svc"), **kw})
    assert err.value.field == field


def test_the_store_refuses_an_unknown_role_even_past_the_code(db):
    import psycopg

    with pytest.raises(psycopg.errors.CheckViolation):
        with db._pool.connection() as conn:
            conn.execute("INSERT INTO api_tokens (id, name, secret_sha256, principal, roles, created_by) "
                         "VALUES ('0123456789ab', 'x', %s, 'p', ARRAY['root'], 'x')", (b"\0" * 32,))
