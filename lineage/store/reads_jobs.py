"""Marquez-compatible reads of jobs and runs (split from :mod:`lineage.store.reads`, whose
module docstring states the conventions: shapes, times, job types, counts and cursor paging).

Jobs carry ``latestRun`` (their newest run), ``latestRuns`` (the newest
:data:`LATEST_RUNS`, for the Marquez UI's run-time chart) and ``tags``; deleted (hidden) jobs
are neither listed nor found.  Run states are Marquez's everywhere (:data:`RUN_STATES`).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from lineage.errors import BadRequest, NotFound
from lineage.store.reads import (
    _JOB_HIDDEN, LATEST_RUNS, OPENLINEAGE_STATES, PROCESSING_TYPE_SQL, RUN_STATES, _count, _keyset, _namespace_id, _rows,
    encode_cursor, marquez_job_type, origin_version,
)
from lineage.store.tags import tags_for
from lineage.times import iso


# -- jobs and runs ------------------------------------------------------------------------
_JOB_SQL = f"""
SELECT j.*, n.name AS namespace, {PROCESSING_TYPE_SQL} AS processing_type,
  (SELECT coalesce(json_agg(json_build_object('namespace', dn.name, 'name', d.name) ORDER BY dn.name, d.name), '[]')
     FROM job_io e JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id
     WHERE e.job_id = j.id AND e.direction = 'i') AS inputs,
  (SELECT coalesce(json_agg(json_build_object('namespace', dn.name, 'name', d.name) ORDER BY dn.name, d.name), '[]')
     FROM job_io e JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id
     WHERE e.job_id = j.id AND e.direction = 'o') AS outputs
FROM jobs j JOIN namespaces n ON n.id = j.namespace_id {{join}}
WHERE {{where}} AND NOT {_JOB_HIDDEN}
ORDER BY {{order}} LIMIT %(l)s OFFSET %(o)s
"""

_RUN_SQL = """
SELECT r.* FROM runs r WHERE {where}
ORDER BY r.created_at DESC, r.run_uuid DESC LIMIT %(l)s OFFSET %(o)s
"""


def _run(r: dict) -> dict:
    duration = None
    if r["started_at"] and r["ended_at"]:
        duration = int((r["ended_at"] - r["started_at"]).total_seconds() * 1000)
    return {
        "id": str(r["run_uuid"]),
        "createdAt": iso(r["created_at"]),
        "updatedAt": iso(r["updated_at"]),
        "nominalStartTime": iso(r["nominal_start"]),
        "nominalEndTime": iso(r["nominal_end"]),
        "state": RUN_STATES.get(r["state"], "NEW"),
        "startedAt": iso(r["started_at"]),
        "endedAt": iso(r["ended_at"]),
        "durationMs": duration,
        "parentRunId": str(r["parent_run_uuid"]) if r["parent_run_uuid"] else None,
        "args": {},
        "facets": {},
    }


def _job(r: dict, latest_runs: list[dict], tags: dict) -> dict:
    return {
        "id": {"namespace": r["namespace"], "name": r["name"]},
        "type": marquez_job_type(r["processing_type"], r["job_type"]),
        "name": r["name"],
        "simpleName": r["name"].rsplit(".", 1)[-1],
        "parentJobName": None,
        "createdAt": iso(r["created_at"]),
        "updatedAt": iso(r["updated_at"]),
        "namespace": r["namespace"],
        "inputs": r["inputs"],
        "outputs": r["outputs"],
        "location": r["location"],
        "description": r["description"],
        "latestRun": latest_runs[0] if latest_runs else None,
        "latestRuns": latest_runs,
        "tags": tags.get((r["namespace"], r["name"], ""), []),
        "facets": {},
    }


def _latest_runs(conn: psycopg.Connection, jobs: list[dict]) -> dict[int, list[dict]]:
    """Each job's newest :data:`LATEST_RUNS` runs, newest first (its ``latestRun`` first): one query."""
    if not jobs:
        return {}
    rows = _rows(conn, """SELECT k.id AS job_key, r.* FROM unnest(%(ids)s::bigint[]) k(id)
                          CROSS JOIN LATERAL (SELECT * FROM runs x WHERE x.job_id = k.id
                                              ORDER BY x.created_at DESC, x.run_uuid DESC LIMIT %(n)s) r""",
                 {"ids": [j["id"] for j in jobs], "n": LATEST_RUNS})
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["job_key"], []).append(_run(r))
    return out


def _jobs(conn: psycopg.Connection, rows: list[dict]) -> list[dict]:
    runs = _latest_runs(conn, rows)
    tags = tags_for(conn, "job", [(r["namespace"], r["name"]) for r in rows])
    return [_job(r, runs.get(r["id"], []), tags) for r in rows]


def marquez_run_states(states: list[str] | None) -> list[str] | None:
    """OpenLineage states for Marquez run states (``COMPLETED`` → ``COMPLETE``); 400 for others."""
    if not states:
        return None
    out: list[str] = []
    for s in states:
        for one in s.split(","):
            if one.upper() not in OPENLINEAGE_STATES:
                raise BadRequest("runState", f"`{one}` is not one of {', '.join(sorted(OPENLINEAGE_STATES))}")
            out += OPENLINEAGE_STATES[one.upper()]
    return out


def list_jobs(conn: psycopg.Connection, namespace: str | None, limit: int, offset: int,
              run_states: list[str] | None = None) -> dict:
    """A namespace's jobs by name, or (``namespace`` None) every namespace's, latest updated first.

    ``run_states`` (OpenLineage states, see :func:`marquez_run_states`) keeps the jobs whose
    latest run is in one of them.
    """
    params: dict[str, Any] = {"l": limit, "o": offset, "st": run_states}
    conds, join = ["true"], ""
    if namespace is not None:
        params["ns"] = _namespace_id(conn, namespace)
        conds.append("n.id = %(ns)s")
    if run_states is not None:
        join = "JOIN runs lr ON lr.run_uuid = j.latest_run_uuid"
        conds.append("lr.state = ANY(%(st)s)")
    where = " AND ".join(conds)
    order = "j.name" if namespace is not None else "j.updated_at DESC, n.name, j.name"
    rows = _rows(conn, _JOB_SQL.format(join=join, where=where, order=order), params)
    total = conn.execute(f"SELECT count(*) FROM jobs j JOIN namespaces n ON n.id = j.namespace_id {join} "
                         f"WHERE {where} AND NOT {_JOB_HIDDEN}", params).fetchone()[0]
    return {"jobs": _jobs(conn, rows), "totalCount": total}


def get_job(conn: psycopg.Connection, namespace: str, name: str) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _JOB_SQL.format(join="", where="n.id = %(ns)s AND j.name = %(name)s", order="j.name"),
                 {"ns": ns, "name": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("job", f"{namespace}:{name}")
    return _jobs(conn, rows)[0]


def list_runs(conn: psycopg.Connection, namespace: str, job: str, limit: int, offset: int, cursor: str | None = None) -> dict:
    """Runs newest first; pages by ``cursor`` (see the module docstring)."""
    row = conn.execute(
        "SELECT j.id FROM jobs j JOIN namespaces n ON n.id = j.namespace_id WHERE n.name = %s AND j.name = %s", (namespace, job)
    ).fetchone()
    if row is None:
        raise NotFound("job", f"{namespace}:{job}")
    key = _keyset(cursor, offset, "runs")
    params: dict[str, Any] = {"j": row[0], "l": limit + 1, "o": offset}
    where = "r.job_id = %(j)s"
    if key is not None:
        try:
            params["ct"], params["ck"] = key[0], uuid.UUID(key[1])
        except ValueError:
            raise BadRequest("cursor", "is not a cursor this server gave out; pass `nextCursor` from the previous page") from None
        where += " AND (r.created_at, r.run_uuid) < (%(ct)s, %(ck)s)"
    rows = _rows(conn, _RUN_SQL.format(where=where), params)
    more, rows = len(rows) > limit, rows[:limit]
    total, exact = _count(conn, "FROM runs r WHERE r.job_id = %(j)s", {"j": row[0]})
    return {"runs": [_run(r) for r in rows], "totalCount": total, "totalCountExact": exact,
            "nextCursor": encode_cursor("runs", rows[-1]["created_at"], rows[-1]["run_uuid"]) if more else None}


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
    # Each dataset with the version this run wrote (outputs) or saw when it read (inputs).
    io = _rows(
        conn,
        """SELECT e.direction, n.name AS namespace, d.name, v.version FROM run_io e
           JOIN datasets d ON d.id = e.dataset_id JOIN namespaces n ON n.id = d.namespace_id
           LEFT JOIN LATERAL (
               SELECT x.version FROM dataset_versions x
               WHERE x.dataset_id = e.dataset_id
                 AND CASE WHEN e.direction = 'o' THEN x.run_uuid = e.run_uuid ELSE x.created_at <= e.event_time END
               ORDER BY x.created_at DESC, x.id DESC LIMIT 1) v ON true
           WHERE e.run_uuid = %(r)s ORDER BY n.name, d.name""",
        {"r": run_id},
    )

    def ref(r: dict) -> dict:
        version = r["version"] or origin_version(r["namespace"], r["name"])
        return {"datasetVersionId": {"namespace": r["namespace"], "name": r["name"], "version": version}, "facets": {}}

    run["inputDatasetVersions"] = [ref(r) for r in io if r["direction"] == "i"]
    run["outputDatasetVersions"] = [ref(r) for r in io if r["direction"] == "o"]
    return run
