"""The decision log: every gate decision, appended to ``gate_decisions`` and never changed.

:func:`record` stores a :class:`~lineage.gate.decision.Decision` with its reasons, the contract
versions it consulted, its validations and the OpenLineage facets it produced; :func:`recent`
reads them back, newest first.  The caller owns the transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lineage.gate.decision import Decision
from lineage.gate.facets import input_facets


def split_job(job: str) -> tuple[str, str]:
    body = job[len("job:"):] if job.startswith("job:") else job
    ns, _, name = body.rpartition(":")
    return ns, name


def record(conn: psycopg.Connection, decision: Decision) -> None:
    ns, name = split_job(decision.job)
    d = decision.as_dict()
    conn.execute(
        """INSERT INTO gate_decisions (decision_id, job_namespace, job_name, purpose, allowed, inputs, reasons,
                                       contracts, validations, facets, decided_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            decision.decision_id,
            ns,
            name,
            decision.purpose,
            decision.allowed,
            Jsonb({"inputs": d["inputs"], "sources": d["sources"], "passedBy": d["passedBy"]}),
            Jsonb(d["reasons"]),
            Jsonb(d["contracts"]),
            Jsonb(d["validations"]),
            Jsonb(input_facets(decision)),
            decision.decided_at,
        ),
    )


def recent(conn: psycopg.Connection, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Stored decisions, newest first, optionally for one job (``NS:NAME``)."""
    where, params = "", []
    if job:
        ns, name = split_job(job)
        where, params = "WHERE job_namespace = %s AND job_name = %s", [ns, name]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT decision_id::text AS "decisionId", job_namespace || ':' || job_name AS job, purpose, allowed,
                       inputs, reasons, contracts, validations, facets, decided_at AS "decidedAt"
                FROM gate_decisions {where} ORDER BY decided_at DESC, id DESC LIMIT %s""",
            [*params, limit],
        ).fetchall()
    for r in rows:
        r["decidedAt"] = r["decidedAt"].isoformat()
    return rows
