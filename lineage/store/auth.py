"""SQL for identity: API tokens and role grants (tables from migration ``0004``).

Plain parameterised statements in the caller's transaction; the rules (hashing, expiry,
normalised names, who may do what) live in :mod:`lineage.auth`.  Rows come back as
:class:`TokenRow` and :class:`GrantRow`; secrets never do, only their SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from lineage.times import iso


@dataclass
class TokenRow:
    id: str
    name: str
    secret_sha256: bytes
    principal: str
    roles: list[str]
    namespaces: list[str] | None
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    def as_dict(self) -> dict:
        """The public view: everything but the hash."""
        return {
            "name": self.name,
            "id": self.id,
            "principal": self.principal,
            "roles": sorted(self.roles),
            "namespaces": sorted(self.namespaces) if self.namespaces is not None else None,
            "expiresAt": iso(self.expires_at) if self.expires_at else None,
            "createdBy": self.created_by,
            "createdAt": iso(self.created_at),
            "revokedAt": iso(self.revoked_at) if self.revoked_at else None,
            "revokedBy": self.revoked_by,
        }


@dataclass
class GrantRow:
    principal: str
    role: str
    actor: str
    at: datetime

    def as_dict(self) -> dict:
        return {"principal": self.principal, "role": self.role, "grantedBy": self.actor, "grantedAt": iso(self.at)}


_TOKEN_COLUMNS = "id, name, secret_sha256, principal, roles, namespaces, expires_at, created_by, created_at, revoked_at, revoked_by"


def insert_token(conn: psycopg.Connection, *, id: str, name: str, secret_sha256: bytes, principal: str,
                 roles: list[str], namespaces: list[str] | None, expires_at: datetime | None, created_by: str) -> TokenRow | None:
    """Insert a token; None when ``name`` is already taken (by a live or a revoked token)."""
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        cur.execute(
            f"""INSERT INTO api_tokens (id, name, secret_sha256, principal, roles, namespaces, expires_at, created_by)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (name) DO NOTHING RETURNING {_TOKEN_COLUMNS}""",
            (id, name, secret_sha256, principal, roles, namespaces, expires_at, created_by),
        )
        return cur.fetchone()


def token_by_id(conn: psycopg.Connection, token_id: str) -> TokenRow | None:
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        cur.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = %s", (token_id,))
        return cur.fetchone()


def token_by_name(conn: psycopg.Connection, name: str) -> TokenRow | None:
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        cur.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE name = %s", (name,))
        return cur.fetchone()


def list_tokens(conn: psycopg.Connection) -> list[TokenRow]:
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        cur.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, name")
        return cur.fetchall()


def revoke_token(conn: psycopg.Connection, name: str, by: str) -> TokenRow | None:
    """Mark a live token revoked; None when there is no live token of that name."""
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        cur.execute(
            f"""UPDATE api_tokens SET revoked_at = now(), revoked_by = %s
                WHERE name = %s AND revoked_at IS NULL RETURNING {_TOKEN_COLUMNS}""",
            (by, name),
        )
        return cur.fetchone()


def live_admin_tokens(conn: psycopg.Connection) -> int:
    """How many unrevoked, unexpired tokens hold ``admin``."""
    row = conn.execute(
        """SELECT count(*) FROM api_tokens WHERE 'admin' = ANY (roles) AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())"""
    ).fetchone()
    return int(row[0]) if row else 0


# -- role grants (append-only) -----------------------------------------------------------------

_CURRENT = """
    SELECT DISTINCT ON (principal, role) principal, role, action, actor, at
    FROM role_grants {where} ORDER BY principal, role, id DESC
"""


def roles_of(conn: psycopg.Connection, principal: str) -> set[str]:
    """The roles ``principal`` (normalised) holds now: those whose latest row is a grant."""
    rows = conn.execute(_CURRENT.format(where="WHERE principal = %s"), (principal,)).fetchall()
    return {role for _, role, action, _, _ in rows if action == "grant"}


def current_grants(conn: psycopg.Connection, principal: str | None = None) -> list[GrantRow]:
    where, params = ("WHERE principal = %s", (principal,)) if principal else ("", ())
    rows = conn.execute(_CURRENT.format(where=where), params).fetchall()
    return [GrantRow(p, r, actor, at) for p, r, action, actor, at in rows if action == "grant"]


def record_grant_lock(conn: psycopg.Connection, principal: str) -> None:
    """Serialise changes to one principal's grants, so "is it held now?" and the insert agree."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('role_grants:' || %s))", (principal,))


def record_grant(conn: psycopg.Connection, principal: str, role: str, action: str, actor: str, reason: str | None) -> None:
    conn.execute(
        "INSERT INTO role_grants (principal, role, action, actor, reason) VALUES (%s, %s, %s, %s, %s)",
        (principal, role, action, actor, reason),
    )
