"""Marquez-compatible reads: namespaces, datasets and versions, jobs, runs, raw events.

Each function returns plain dicts in the shape Marquez's REST API answers with (camelCase
keys, list envelopes ``{"<plural>": [...], "totalCount": N}``), so ``marquez-python`` and
other Marquez clients read this store unchanged.  Unknown names raise
:class:`~lineage.errors.NotFound`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lineage.errors import NotFound

# Marquez's run states for OpenLineage's event types.
RUN_STATES = {"START": "RUNNING", "RUNNING": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED", "ABORT": "ABORTED", "OTHER": "NEW"}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def _rows(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def _namespace_id(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM namespaces WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound("namespace", name)
    return row[0]


# -- namespaces ---------------------------------------------------------------------------
def _namespace(r: dict) -> dict:
    return {"name": r["name"], "createdAt": _iso(r["created_at"]), "updatedAt": _iso(r["updated_at"]),
            "ownerName": "anonymous", "description": None, "isHidden": False}


_NAMESPACE_SQL = """
SELECT n.*, greatest(n.created_at,
                     (SELECT max(updated_at) FROM jobs j WHERE j.namespace_id = n.id),
                     (SELECT max(updated_at) FROM datasets d WHERE d.namespace_id = n.id)) AS updated_at,
       count(*) OVER () AS total
FROM namespaces n {where} ORDER BY n.name LIMIT %(l)s OFFSET %(o)s
"""


def list_namespaces(conn: psycopg.Connection, limit: int, offset: int) -> dict:
    rows = _rows(conn, _NAMESPACE_SQL.format(where=""), {"l": limit, "o": offset})
    total = rows[0]["total"] if rows else conn.execute("SELECT count(*) FROM namespaces").fetchone()[0]
    return {"namespaces": [_namespace(r) for r in rows], "totalCount": total}


def get_namespace(conn: psycopg.Connection, name: str) -> dict:
    rows = _rows(conn, _NAMESPACE_SQL.format(where="WHERE n.name = %(n)s"), {"n": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("namespace", name)
    return _namespace(rows[0])


# -- datasets -----------------------------------------------------------------------------
_DATASET_SQL = """
SELECT d.*, n.name AS namespace, s.fields, count(*) OVER () AS total
FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
LEFT JOIN dataset_schemas s ON s.id = d.schema_id
WHERE n.id = %(ns)s {extra}
ORDER BY d.name LIMIT %(l)s OFFSET %(o)s
"""


def _fields(fields: list[dict] | None) -> list[dict]:
    return [{"name": f["name"], "type": f.get("type"), "tags": [], "description": f.get("description")} for f in (fields or [])]


def _dataset(r: dict) -> dict:
    return {
        "id": {"namespace": r["namespace"], "name": r["name"]},
        "type": "DB_TABLE",
        "name": r["name"],
        "physicalName": r["name"],
        "createdAt": _iso(r["created_at"]),
        "updatedAt": _iso(r["updated_at"]),
        "namespace": r["namespace"],
        "sourceName": r["source_name"] or "default",
        "fields": _fields(r["fields"]),
        "tags": [],
        "lastModifiedAt": _iso(r["updated_at"]),
        "description": r["description"],
        "currentVersion": r["current_version"],
        "facets": {},
        "deleted": False,
    }


def list_datasets(conn: psycopg.Connection, namespace: str, limit: int, offset: int) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _DATASET_SQL.format(extra=""), {"ns": ns, "l": limit, "o": offset})
    total = rows[0]["total"] if rows else conn.execute("SELECT count(*) FROM datasets WHERE namespace_id = %s", (ns,)).fetchone()[0]
    return {"datasets": [_dataset(r) for r in rows], "totalCount": total}


def get_dataset(conn: psycopg.Connection, namespace: str, name: str) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _DATASET_SQL.format(extra="AND d.name = %(name)s"), {"ns": ns, "name": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("dataset", f"{namespace}:{name}")
    return _dataset(rows[0])


_VERSION_SQL = """
SELECT v.*, d.name, n.name AS namespace, d.source_name, d.description, s.fields,
       r.payload AS raw, count(*) OVER () AS total
FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id JOIN namespaces n ON n.id = d.namespace_id
LEFT JOIN dataset_schemas s ON s.id = v.schema_id
JOIN raw_events r ON r.id = v.raw_event_id
WHERE d.id = %(d)s {extra}
ORDER BY v.created_at DESC, v.id DESC LIMIT %(l)s OFFSET %(o)s
"""


def _version(r: dict) -> dict:
    facets: dict = {}
    for out in (r["raw"] or {}).get("outputs", []):
        if out.get("namespace") == r["namespace"] and out.get("name") == r["name"]:
            facets = out.get("facets", {})
    return {
        "id": {"namespace": r["namespace"], "name": r["name"], "version": r["version"]},
        "type": "DB_TABLE",
        "name": r["name"],
        "physicalName": r["name"],
        "createdAt": _iso(r["created_at"]),
        "version": r["version"],
        "namespace": r["namespace"],
        "sourceName": r["source_name"] or "default",
        "fields": _fields(r["fields"]),
        "tags": [],
        "description": r["description"],
        "createdByRun": {"id": str(r["run_uuid"])} if r["run_uuid"] else None,
        "facets": facets,
    }


def _dataset_id(conn: psycopg.Connection, namespace: str, name: str) -> int:
    row = conn.execute(
        "SELECT d.id FROM datasets d JOIN namespaces n ON n.id = d.namespace_id WHERE n.name = %s AND d.name = %s",
        (namespace, name),
    ).fetchone()
    if row is None:
        raise NotFound("dataset", f"{namespace}:{name}")
    return row[0]


def list_dataset_versions(conn: psycopg.Connection, namespace: str, name: str, limit: int, offset: int) -> dict:
    d = _dataset_id(conn, namespace, name)
    rows = _rows(conn, _VERSION_SQL.format(extra=""), {"d": d, "l": limit, "o": offset})
    total = rows[0]["total"] if rows else 0
    return {"versions": [_version(r) for r in rows], "totalCount": total}


def get_dataset_version(conn: psycopg.Connection, namespace: str, name: str, version: str) -> dict:
    d = _dataset_id(conn, namespace, name)
    rows = _rows(conn, _VERSION_SQL.format(extra="AND v.version = %(v)s"), {"d": d, "v": version, "l": 1, "o": 0})
    if not rows:
        raise NotFound("dataset version", f"{namespace}:{name}@{version}")
    return _version(rows[0])


# -- jobs and runs ------------------------------------------------------------------------
_JOB_SQL = """
SELECT j.*, n.name AS namespace, count(*) OVER () AS total,
  (SELECT coalesce(json_agg(json_build_object('namespace', dn.name, 'name', d.name) ORDER BY dn.name, d.name), '[]')
     FROM job_io e JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id
     WHERE e.job_id = j.id AND e.direction = 'i') AS inputs,
  (SELECT coalesce(json_agg(json_build_object('namespace', dn.name, 'name', d.name) ORDER BY dn.name, d.name), '[]')
     FROM job_io e JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id
     WHERE e.job_id = j.id AND e.direction = 'o') AS outputs
FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
WHERE n.id = %(ns)s {extra}
ORDER BY j.name LIMIT %(l)s OFFSET %(o)s
"""

_RUN_SQL = """
SELECT r.*, count(*) OVER () AS total FROM runs r WHERE {where}
ORDER BY r.created_at DESC LIMIT %(l)s OFFSET %(o)s
"""


def _run(r: dict) -> dict:
    duration = None
    if r["started_at"] and r["ended_at"]:
        duration = int((r["ended_at"] - r["started_at"]).total_seconds() * 1000)
    return {
        "id": str(r["run_uuid"]),
        "createdAt": _iso(r["created_at"]),
        "updatedAt": _iso(r["updated_at"]),
        "nominalStartTime": _iso(r["nominal_start"]),
        "nominalEndTime": _iso(r["nominal_end"]),
        "state": RUN_STATES.get(r["state"], r["state"]),
        "startedAt": _iso(r["started_at"]),
        "endedAt": _iso(r["ended_at"]),
        "durationMs": duration,
        "parentRunId": str(r["parent_run_uuid"]) if r["parent_run_uuid"] else None,
        "args": {},
        "facets": {},
    }


def _job(r: dict, latest_run: dict | None) -> dict:
    return {
        "id": {"namespace": r["namespace"], "name": r["name"]},
        "type": r["job_type"] or "BATCH",
        "name": r["name"],
        "simpleName": r["name"].rsplit(".", 1)[-1],
        "parentJobName": None,
        "createdAt": _iso(r["created_at"]),
        "updatedAt": _iso(r["updated_at"]),
        "namespace": r["namespace"],
        "inputs": r["inputs"],
        "outputs": r["outputs"],
        "location": r["location"],
        "description": r["description"],
        "latestRun": latest_run,
        "facets": {},
    }


def _latest_runs(conn: psycopg.Connection, jobs: list[dict]) -> dict[uuid.UUID, dict]:
    ids = [j["latest_run_uuid"] for j in jobs if j["latest_run_uuid"]]
    if not ids:
        return {}
    rows = _rows(conn, "SELECT * FROM runs WHERE run_uuid = ANY(%(ids)s)", {"ids": ids})
    return {r["run_uuid"]: _run(r) for r in rows}


def list_jobs(conn: psycopg.Connection, namespace: str, limit: int, offset: int) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _JOB_SQL.format(extra=""), {"ns": ns, "l": limit, "o": offset})
    runs = _latest_runs(conn, rows)
    total = rows[0]["total"] if rows else 0
    return {"jobs": [_job(r, runs.get(r["latest_run_uuid"])) for r in rows], "totalCount": total}


def get_job(conn: psycopg.Connection, namespace: str, name: str) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _JOB_SQL.format(extra="AND j.name = %(name)s"), {"ns": ns, "name": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("job", f"{namespace}:{name}")
    return _job(rows[0], _latest_runs(conn, rows).get(rows[0]["latest_run_uuid"]))


def list_runs(conn: psycopg.Connection, namespace: str, job: str, limit: int, offset: int) -> dict:
    row = conn.execute(
        "SELECT j.id FROM jobs j JOIN namespaces n ON n.id = j.namespace_id WHERE n.name = %s AND j.name = %s", (namespace, job)
    ).fetchone()
    if row is None:
        raise NotFound("job", f"{namespace}:{job}")
    rows = _rows(conn, _RUN_SQL.format(where="r.job_id = %(j)s"), {"j": row[0], "l": limit, "o": offset})
    return {"runs": [_run(r) for r in rows], "totalCount": rows[0]["total"] if rows else 0}


def get_run(conn: psycopg.Connection, run_id: uuid.UUID) -> dict:
    rows = _rows(conn, _RUN_SQL.format(where="r.run_uuid = %(r)s"), {"r": run_id, "l": 1, "o": 0})
    if not rows:
        raise NotFound("run", str(run_id))
    run = _run(rows[0])
    # Facets of the run as its latest event carried them (an index lookup, not a scan).
    raw = conn.execute(
        "SELECT payload -> 'run' -> 'facets' FROM raw_events WHERE run_uuid = %s ORDER BY event_time DESC, id DESC LIMIT 1",
        (run_id,),
    ).fetchone()
    run["facets"] = raw[0] if raw and raw[0] else {}
    io = _rows(
        conn,
        """SELECT e.direction, n.name AS namespace, d.name FROM run_io e JOIN datasets d ON d.id = e.dataset_id
           JOIN namespaces n ON n.id = d.namespace_id WHERE e.run_uuid = %(r)s ORDER BY n.name, d.name""",
        {"r": run_id},
    )
    run["inputDatasetVersions"] = [{"datasetVersionId": {"namespace": r["namespace"], "name": r["name"]}} for r in io if r["direction"] == "i"]
    run["outputDatasetVersions"] = [{"datasetVersionId": {"namespace": r["namespace"], "name": r["name"]}} for r in io if r["direction"] == "o"]
    return run


# -- raw events ---------------------------------------------------------------------------
def list_events(conn: psycopg.Connection, *, before: datetime | None, after: datetime | None,
                limit: int, offset: int, namespace: str | None = None) -> dict:
    """Raw events, newest first, as Marquez's ``/api/v1/events/lineage`` lists them."""
    params = {"b": before, "a": after, "ns": namespace, "l": limit, "o": offset}
    where = """(%(b)s::timestamptz IS NULL OR event_time <= %(b)s) AND (%(a)s::timestamptz IS NULL OR event_time >= %(a)s)
               AND (%(ns)s::text IS NULL OR job_namespace = %(ns)s)"""
    rows = conn.execute(
        f"SELECT payload::text FROM raw_events WHERE {where} ORDER BY event_time DESC, id DESC LIMIT %(l)s OFFSET %(o)s", params
    ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM raw_events WHERE {where}", params).fetchone()[0]
    return {"events_raw": [r[0] for r in rows], "totalCount": total}
