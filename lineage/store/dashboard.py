"""The dashboard's own reads: annotations for graph nodes, a dataset's runs, a run's timeline,
search, and the stamp that says whether the store changed.

Each function is one SQL statement (or a fixed handful) over indexed tables, whatever the size
of the graph it annotates: node lists go in as arrays (``unnest``), never one query per node.
Raw JSON is read only for a job's *latest* run (an index lookup by ``run_uuid``), as
:data:`lineage.store.reads.PROCESSING_TYPE_SQL` does.  Read-only; the caller owns the connection.

A run's gate verdict is returned as found (``{"facet": contractGate, "inputs": [...]}`` or
None): reading it is the caller's business (:func:`lineage.dashboard.view.gate_verdict`), so
this module knows SQL and nothing of the pages.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lineage.errors import NotFound
from lineage.store.reads import RUN_STATES
from lineage.times import iso

_JOBS = """
SELECT n.name AS namespace, j.name, r.state, r.run_uuid,
       (SELECT jsonb_build_object('facet', x.payload -> 'run' -> 'facets' -> 'contractGate', 'inputs', x.payload -> 'inputs')
        FROM raw_events x
        WHERE x.run_uuid = j.latest_run_uuid AND x.payload -> 'run' -> 'facets' ? 'contractGate'
        ORDER BY x.event_time DESC, x.id DESC LIMIT 1) AS gate
FROM unnest(%s::text[], %s::text[]) AS k(ns, name)
JOIN namespaces n ON n.name = k.ns JOIN jobs j ON j.namespace_id = n.id AND j.name = k.name
LEFT JOIN runs r ON r.run_uuid = j.latest_run_uuid
"""


def job_states(conn: psycopg.Connection, jobs: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per ``(namespace, name)``: its latest run's id and Marquez state, and the gate facet that
    run carried (raw ``{"facet", "inputs"}``; None if it was not a gate)."""
    if not jobs:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_JOBS, ([j[0] for j in jobs], [j[1] for j in jobs])).fetchall()
    return {
        (r["namespace"], r["name"]): {
            "runId": str(r["run_uuid"]) if r["run_uuid"] else None,
            "state": RUN_STATES.get(r["state"], "NEW") if r["state"] else None,
            "gate": r["gate"],
        }
        for r in rows
    }


_DATASET_RUNS = """
SELECT e.direction, e.event_time, r.run_uuid, r.state, jn.name AS job_namespace, j.name AS job_name,
       (SELECT jsonb_build_object('facet', x.payload -> 'run' -> 'facets' -> 'contractGate', 'inputs', x.payload -> 'inputs')
        FROM raw_events x
        WHERE x.run_uuid = r.run_uuid AND x.payload -> 'run' -> 'facets' ? 'contractGate'
        ORDER BY x.event_time DESC, x.id DESC LIMIT 1) AS gate
FROM run_io e
JOIN datasets d ON d.id = e.dataset_id JOIN namespaces n ON n.id = d.namespace_id
JOIN runs r ON r.run_uuid = e.run_uuid JOIN jobs j ON j.id = r.job_id JOIN namespaces jn ON jn.id = j.namespace_id
WHERE n.name = %(ns)s AND d.name = %(name)s
ORDER BY e.event_time DESC, r.run_uuid DESC LIMIT %(limit)s
"""


def dataset_runs(conn: psycopg.Connection, namespace: str, name: str, limit: int = 100) -> list[dict[str, Any]]:
    """The runs that read (``input``) or wrote (``output``) the dataset, newest first, with any raw gate facet."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_DATASET_RUNS, {"ns": namespace, "name": name, "limit": limit}).fetchall()
    return [
        {
            "runId": str(r["run_uuid"]),
            "job": {"namespace": r["job_namespace"], "name": r["job_name"]},
            "role": "input" if r["direction"] == "i" else "output",
            "state": RUN_STATES.get(r["state"], "NEW"),
            "eventTime": iso(r["event_time"]),
            "gate": r["gate"],
        }
        for r in rows
    ]


def run_timeline(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any]:
    """The run's job and every event it sent, oldest first (type, event time, when stored), and
    the ``contractGate`` facet of its latest event that carried one."""
    row = conn.execute(
        """SELECT jn.name, j.name FROM runs r JOIN jobs j ON j.id = r.job_id JOIN namespaces jn ON jn.id = j.namespace_id
           WHERE r.run_uuid = %s""",
        (run_id,),
    ).fetchone()
    if row is None:
        raise NotFound("run", str(run_id))
    events = conn.execute(
        """SELECT event_type, event_time, recorded_at,
                  CASE WHEN payload -> 'run' -> 'facets' ? 'contractGate' THEN
                       jsonb_build_object('facet', payload -> 'run' -> 'facets' -> 'contractGate', 'inputs', payload -> 'inputs') END
           FROM raw_events WHERE run_uuid = %s ORDER BY event_time, id LIMIT 1000""",
        (run_id,),
    ).fetchall()
    gate = next((g for *_, g in reversed(events) if g is not None), None)
    return {
        "job": {"namespace": row[0], "name": row[1]},
        "timeline": [{"eventType": t or "OTHER", "eventTime": iso(at), "recordedAt": iso(rec)} for t, at, rec, _ in events],
        "gate": gate,
    }


def search(conn: psycopg.Connection, text: str, limit: int) -> list[dict[str, Any]]:
    """Datasets and jobs whose name or namespace contains ``text`` (case-insensitive), across
    every namespace; exact-name matches first, then by name."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        """SELECT kind, namespace, name FROM (
               SELECT 'dataset' AS kind, n.name AS namespace, d.name FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
               WHERE d.name ILIKE %(like)s OR n.name ILIKE %(like)s
               UNION ALL
               SELECT 'job', n.name, j.name FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
               WHERE j.name ILIKE %(like)s OR n.name ILIKE %(like)s
           ) s ORDER BY lower(name) <> lower(%(text)s), name, namespace, kind LIMIT %(limit)s""",
        {"like": like, "text": text, "limit": limit},
    ).fetchall()
    return [{"kind": k, "namespace": ns, "name": n} for k, ns, n in rows]


def change_stamp(conn: psycopg.Connection) -> str:
    """A stamp that changes whenever any write transaction commits, and never returns.

    The snapshot (``xmin:xmax:in-progress xids``) moves on every commit of a transaction that
    wrote anything: a committed xid either was in progress (it leaves the list) or was not yet
    assigned (``xmax`` passes it), and xids only grow.  So two equal stamps mean nothing was
    committed between them: an answer cached under a stamp is the answer the store would give
    now.  The highest ``id`` of the tables would not do: sequences are taken at insert time and
    transactions commit out of order, so a row with a lower id can appear under the same maximum.
    The stamp is conservative (a write anywhere in the cluster, the ledger's sealing included,
    moves it), and costs one statement that reads no table.
    """
    return conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0]


def erased_as_of(
    conn: psycopg.Connection, datasets: list[tuple[str, str]], as_of: datetime | None = None
) -> dict[tuple[str, str], int]:
    """For the given ``(namespace, name)``\\ s: the id of the erasure manifest naming each
    (compared under NFC, as the erasure service does), counting only manifests recorded by
    ``as_of`` (default: now).  One query."""
    from lineage.store.erasure import erased_among

    return {pair: manifest for pair, (manifest, _) in erased_among(conn, datasets, as_of).items()}
