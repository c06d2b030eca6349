"""The governance registries' SQL: namespace owners and declared ties (migration 0005).

``namespace_owners`` says who owns the jobs of an OpenLineage job namespace; ``principal_ties``
records a principal's declared interest in an organisation.  Both are append-only: a row ends
with one row in its revocation table (``namespace_owner_revocations``,
``principal_tie_revocations``), so the record keeps who said what, when and with which
credential.  A row is *active* while it has no revocation.

Every function takes an open psycopg connection (the caller owns the transaction) and returns
plain dicts; :mod:`lineage.contracts.governance` normalises the names and enforces the rules.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

_OWNER = """
SELECT o.id, o.namespace, o.owner, o.recorded_by, o.credential, o.recorded_at,
       r.reason AS revoked_reason, r.recorded_by AS revoked_by, r.recorded_at AS revoked_at
FROM namespace_owners o LEFT JOIN namespace_owner_revocations r ON r.owner_id = o.id
"""

_TIE = """
SELECT t.id, t.principal, t.organisation, t.organisation_name, t.kind, t.note,
       t.recorded_by, t.credential, t.recorded_at,
       r.reason AS revoked_reason, r.recorded_by AS revoked_by, r.recorded_at AS revoked_at
FROM principal_ties t LEFT JOIN principal_tie_revocations r ON r.tie_id = t.id
"""


def lock(conn: psycopg.Connection, key: str) -> None:
    """Serialise changes to one registry entry until the end of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", ("governance:" + key,))


# -- namespace owners ----------------------------------------------------------------------------


def insert_owner(conn: psycopg.Connection, namespace: str, owner: str, by: str, credential: str) -> dict[str, Any]:
    row = conn.execute(
        "INSERT INTO namespace_owners (namespace, owner, recorded_by, credential) VALUES (%s, %s, %s, %s) RETURNING id",
        (namespace, owner, by, credential),
    ).fetchone()
    return owner_row(conn, row[0])  # type: ignore[index,return-value]


def owner_row(conn: psycopg.Connection, owner_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_OWNER + " WHERE o.id = %s", (owner_id,)).fetchone()


def owner_rows(conn: psycopg.Connection, namespace: str | None = None, active_only: bool = True) -> list[dict[str, Any]]:
    where = ["TRUE"]
    params: list[Any] = []
    if namespace is not None:
        where.append("o.namespace = %s")
        params.append(namespace)
    if active_only:
        where.append("r.owner_id IS NULL")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_OWNER + " WHERE " + " AND ".join(where) + " ORDER BY o.id", params).fetchall()


def active_owner(conn: psycopg.Connection, namespace: str, owner: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            _OWNER + " WHERE o.namespace = %s AND o.owner = %s AND r.owner_id IS NULL ORDER BY o.id LIMIT 1", (namespace, owner)
        ).fetchone()


def revoke_owner(conn: psycopg.Connection, owner_id: int, reason: str, by: str, credential: str) -> None:
    conn.execute(
        "INSERT INTO namespace_owner_revocations (owner_id, reason, recorded_by, credential) VALUES (%s, %s, %s, %s)",
        (owner_id, reason, by, credential),
    )


# -- declared ties -------------------------------------------------------------------------------


def insert_tie(
    conn: psycopg.Connection, principal: str, organisation: str, organisation_name: str, kind: str, note: str | None, by: str, credential: str
) -> dict[str, Any]:
    row = conn.execute(
        """INSERT INTO principal_ties (principal, organisation, organisation_name, kind, note, recorded_by, credential)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (principal, organisation, organisation_name, kind, note, by, credential),
    ).fetchone()
    return tie_row(conn, row[0])  # type: ignore[index,return-value]


def tie_row(conn: psycopg.Connection, tie_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_TIE + " WHERE t.id = %s", (tie_id,)).fetchone()


def tie_rows(conn: psycopg.Connection, principal: str | None = None, active_only: bool = True) -> list[dict[str, Any]]:
    where = ["TRUE"]
    params: list[Any] = []
    if principal is not None:
        where.append("t.principal = %s")
        params.append(principal)
    if active_only:
        where.append("r.tie_id IS NULL")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_TIE + " WHERE " + " AND ".join(where) + " ORDER BY t.id", params).fetchall()


def revoke_tie(conn: psycopg.Connection, tie_id: int, reason: str, by: str, credential: str) -> None:
    conn.execute(
        "INSERT INTO principal_tie_revocations (tie_id, reason, recorded_by, credential) VALUES (%s, %s, %s, %s)",
        (tie_id, reason, by, credential),
    )
