"""API tokens for services (Airflow, CI): random, shown once, stored hashed, scoped, revocable.

A token reads ``lin_<id>_<secret>``:

* ``lin_`` makes it recognisable (secret scanners, logs, a mistaken paste);
* ``<id>`` is 12 random hex digits, public, the lookup key: the server finds the one row
  by primary key instead of hashing against every stored token;
* ``<secret>`` is ``secrets.token_urlsafe(32)``: 32 bytes (256 bits) from the OS generator.

Only ``SHA-256(secret)`` is stored, and a presented secret is compared with
:func:`hmac.compare_digest` against it.  A fast hash is right here, where it would be wrong for
passwords: slow, salted hashes (bcrypt, argon2) exist to make guessing *low-entropy* secrets
expensive; guessing a 256-bit random secret is infeasible at any hash speed, and a stolen
table of SHA-256 values gives nothing to brute-force.  A slow hash would only slow every
request (every ingest authenticates).  Constant-time comparison keeps the response time from
telling how much of a guessed hash matched.

Tokens act as a principal (a normalised name, :func:`lineage.auth.normalise_name`), hold
explicit roles, may expire and may be scoped to job namespaces (emitters).  Revoked and
expired tokens authenticate nobody; the row stays for the record.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timezone

import psycopg

from lineage.auth.errors import Unauthenticated
from lineage.auth.principal import ROLES, Principal, normalise_name
from lineage.errors import BadRequest, Conflict, NotFound
from lineage.store import auth as store

PREFIX = "lin_"
_SHAPE = re.compile(r"^lin_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def looks_like_token(value: str) -> bool:
    """Is ``value`` meant as an API token (as opposed to a JWT)?  True for any ``lin_`` value."""
    return value.startswith(PREFIX)


def create(
    conn: psycopg.Connection,
    *,
    name: str,
    principal: str,
    roles: list[str] | tuple[str, ...],
    created_by: str,
    namespaces: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[store.TokenRow, str]:
    """Create a token; returns its row and the plaintext, which is shown once and never stored."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest("name", "1-200 characters: letters, digits and . _ : @ -, starting with a letter or digit")
    who = normalise_name(principal, "principal")
    wanted = sorted(set(roles))
    if not wanted:
        raise BadRequest("roles", f"name at least one role of {', '.join(ROLES)}")
    unknown = [r for r in wanted if r not in ROLES]
    if unknown:
        raise BadRequest("roles", f"unknown role `{unknown[0]}`; roles are {', '.join(ROLES)}")
    scope = None
    if namespaces is not None:
        scope = sorted({n for n in namespaces})
        if not scope or any(not isinstance(n, str) or not n or "\x00" in n for n in scope):
            raise BadRequest("namespaces", "a scope lists one or more non-empty job namespaces (omit it for any namespace)")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        if expires_at <= datetime.now(timezone.utc):
            raise BadRequest("expiresAt", "is in the past; a token must expire in the future (or never)")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = store.insert_token(conn, id=token_id, name=name, secret_sha256=_hash(secret), principal=who, roles=wanted,
                             namespaces=scope, expires_at=expires_at, created_by=created_by)
    if row is None:
        raise Conflict(f"a token named `{name}` already exists (names are never reused, even once revoked); choose another name")
    return row, f"{PREFIX}{token_id}_{secret}"


def authenticate(conn: psycopg.Connection, token: str, now: datetime | None = None) -> Principal:
    """The principal ``token`` proves, or :class:`Unauthenticated`."""
    return verify(conn, token, now)[0]


def verify(conn: psycopg.Connection, token: str, now: datetime | None = None) -> tuple[Principal, datetime | None]:
    """The principal ``token`` proves and when the token expires, or :class:`Unauthenticated`.

    A malformed token, an unknown id and a wrong secret get the same answer; expiry and
    revocation are named, since a legitimate holder needs to know which it is.
    """
    m = _SHAPE.match(token)
    if m is None:
        raise Unauthenticated("the API token is malformed")
    token_id, secret = m.groups()
    row = store.token_by_id(conn, token_id)
    # Compare even when there is no row, so a missing id and a wrong secret take the same time.
    expected = row.secret_sha256 if row is not None else b"\x00" * 32
    if not hmac.compare_digest(_hash(secret), bytes(expected)) or row is None:
        raise Unauthenticated("the API token is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated(f"the API token `{row.name}` was revoked")
    if row.expires_at is not None and row.expires_at <= (now or datetime.now(timezone.utc)):
        raise Unauthenticated(f"the API token `{row.name}` expired")
    return Principal(
        name=row.principal,
        credential=f"token:{row.name}",
        roles=frozenset(row.roles),
        namespaces=frozenset(row.namespaces) if row.namespaces is not None else None,
    ), row.expires_at


def revoke(conn: psycopg.Connection, name: str, by: str) -> store.TokenRow:
    from lineage.auth.authenticate import invalidate

    row = store.revoke_token(conn, name, by)
    if row is not None:
        # Commit first, then forget cached verifications: a check that races the revocation
        # either sees it in the store or started before invalidate() and is not cached.
        conn.commit()
        invalidate()
    if row is None:
        existing = store.token_by_name(conn, name)
        if existing is None:
            raise NotFound("token", name)
        raise Conflict(f"token `{name}` was already revoked ({existing.revoked_at:%Y-%m-%d %H:%M} UTC, by {existing.revoked_by})")
    return row


def list_all(conn: psycopg.Connection) -> list[store.TokenRow]:
    return store.list_tokens(conn)
