"""The gate's decision log in SQL: ``gate_decisions`` (migration 0002), append-only.

A decision is stored as a :class:`DecisionRow`, a plain mapping of the table's columns, so the
same row can be written now, or written to a pending file while the store is unreachable and
inserted later (:mod:`lineage.gate.pending`).  :func:`insert` is idempotent on ``decision_id``
(the column is ``UNIQUE``): inserting the same decision twice stores it once, which is what
makes replaying pending files safe when two gates replay them at once, or a replay is cut short
between the insert and the file's removal.

Functions take an open psycopg connection; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lineage.times import iso


class DecisionRow(TypedDict):
    decision_id: str
    job_namespace: str
    job_name: str
    purpose: str
    allowed: bool
    inputs: dict[str, Any]
    reasons: list[dict[str, Any]]
    contracts: dict[str, int]
    validations: list[dict[str, Any]]
    facets: dict[str, Any]
    decided_at: dt.datetime


_JSON = ("inputs", "reasons", "contracts", "validations", "facets")
_COLUMNS = ("decision_id", "job_namespace", "job_name", "purpose", "allowed", *_JSON, "decided_at")


def insert(conn: psycopg.Connection, row: DecisionRow) -> bool:
    """Store one decision; False if a decision with that id is already stored (nothing changes)."""
    values = [Jsonb(row[c]) if c in _JSON else row[c] for c in _COLUMNS]  # type: ignore[literal-required]
    cur = conn.execute(
        f"INSERT INTO gate_decisions ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
        "ON CONFLICT (decision_id) DO NOTHING",
        values,
    )
    return cur.rowcount == 1


def recent(
    conn: psycopg.Connection, job: tuple[str, str] | None = None, limit: int = 50, as_of: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Stored decisions, newest first, optionally for one job ``(namespace, name)``; API-shaped keys.
    With ``as_of``: only those the log had recorded by then (``recorded_at``, the store's clock)."""
    clauses, params = [], []
    if job:
        clauses.append("job_namespace = %s AND job_name = %s")
        params += [job[0], job[1]]
    if as_of is not None:
        clauses.append("recorded_at <= %s")
        params.append(as_of)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT decision_id::text AS "decisionId", job_namespace || ':' || job_name AS job, purpose, allowed,
                       inputs, reasons, contracts, validations, facets, decided_at AS "decidedAt",
                       recorded_at AS "recordedAt"
                FROM gate_decisions {where} ORDER BY decided_at DESC, id DESC LIMIT %s""",
            [*params, limit],
        ).fetchall()
    for r in rows:
        r["decidedAt"] = iso(r["decidedAt"])
        r["recordedAt"] = iso(r["recordedAt"])
    return rows


def count(conn: psycopg.Connection, decision_id: str) -> int:
    """How many rows carry ``decision_id`` (0 or 1: the column is unique)."""
    return conn.execute("SELECT count(*) FROM gate_decisions WHERE decision_id = %s", (decision_id,)).fetchone()[0]
