"""Marquez-compatible reads: namespaces, datasets and versions, jobs, runs, raw events.

Each function returns plain dicts in the shape Marquez's REST API answers with (camelCase
keys, list envelopes ``{"<plural>": [...], "totalCount": N}``; see Marquez's ``openapi.yml``,
carried in ``tests/data/marquez/``), so ``marquez-python`` and other Marquez clients read this
store unchanged.  Unknown names raise :class:`~lineage.errors.NotFound`, and so do datasets
and jobs deleted through the Marquez API (hidden, see :mod:`lineage.store.tags`; their
versions and runs stay readable).  Jobs and runs are in :mod:`lineage.store.reads_jobs`,
re-exported here.

Conventions, the same on every answer:

* **Times** are ISO 8601 in UTC with microseconds and ``Z`` (``2026-11-26T10:00:00.123456Z``),
  all written by :func:`iso`.  Raw events in ``/events/lineage`` are served as stored.
* **Job type** is Marquez's ``BATCH``, ``STREAM`` or ``SERVICE``: ``STREAM`` when the job's
  latest run reported ``jobType.processingType`` ``STREAMING``, ``SERVICE`` when the
  OpenLineage ``jobType.jobType`` is ``SERVICE``, ``BATCH`` otherwise (Marquez's default).
* **Versions.** A dataset version is the ``datasetVersion`` facet's value when the producer
  gave one, otherwise a UUID derived from the run and the dataset.  A run's
  ``inputDatasetVersions``/``outputDatasetVersions`` name ``{namespace, name, version}``: for
  an output the version that run wrote; for an input the latest version recorded when the run
  read it, or, for a dataset no recorded run wrote, its *origin version*
  (:func:`origin_version`, a UUID derived from namespace and name), which
  ``/versions/{version}`` resolves too.
* **totalCount** is the number of items matching the request, whatever ``limit``/``offset``
  /``cursor`` select (so it is the same past the last page).  Namespaces, datasets and jobs
  are counted exactly.  Lists that grow with every event (runs, dataset versions, raw events)
  are counted exactly up to :data:`COUNT_CAP`; beyond it ``totalCount`` is PostgreSQL's
  planner estimate (never below ``COUNT_CAP + 1``) and ``totalCountExact`` is ``false``, so
  a request never counts a million events.
* **Paging.** Those growing lists page by key: each page carries ``nextCursor`` (``null`` on
  the last page), an opaque key of its last item; passing it as ``cursor`` continues after
  that item with an index range scan, however deep the page.  ``limit``/``offset`` stay
  accepted for Marquez clients (``offset`` costs a scan of the skipped rows); ``cursor`` and a
  non-zero ``offset`` together are a 400, and so is a cursor of another list or direction.
  Events never move, so paging them while events arrive neither repeats nor skips one.  A
  run's or version's ``createdAt`` is its earliest event time, so an earlier event arriving
  late (a START after its COMPLETE) moves that item further down: it can then appear again
  on a later page (never skipped).  A key that never moves needs ingest to keep one.  Namespaces, datasets and jobs are ordered by name
  and page by ``offset``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lineage.times import iso
from lineage.errors import BadRequest, NotFound
from lineage.store.column_lineage import dataset_column_lineage
from lineage.store.tags import hidden_sql, tags_for

# Marquez's run states for OpenLineage's event types, and back (a Marquez state may stand for two).
RUN_STATES = {"START": "RUNNING", "RUNNING": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED", "ABORT": "ABORTED", "OTHER": "NEW"}
OPENLINEAGE_STATES = {m: [o for o, x in RUN_STATES.items() if x == m] for m in set(RUN_STATES.values())}
#: How many runs a job carries in ``latestRuns`` (the Marquez UI draws their durations).
LATEST_RUNS = 10

COUNT_CAP = 10_000


def marquez_job_type(processing_type: str | None, job_type: str | None) -> str:
    """Marquez's job type from OpenLineage's ``jobType`` facet; see the module docstring."""
    if (processing_type or "").upper() in ("STREAMING", "STREAM"):
        return "STREAM"
    if (job_type or "").upper() == "SERVICE":
        return "SERVICE"
    return "BATCH"


def origin_version(namespace: str, name: str) -> str:
    """The version of a dataset no recorded run wrote: a UUID derived from its identity."""
    return str(uuid.UUID(hashlib.md5(f"{namespace}:{name}".encode()).hexdigest()))


# The processing type as the job's latest run reported it: an index lookup by run, not a scan.
PROCESSING_TYPE_SQL = """(SELECT x.payload -> 'job' -> 'facets' -> 'jobType' ->> 'processingType' FROM raw_events x
    WHERE x.run_uuid = j.latest_run_uuid AND x.payload -> 'job' -> 'facets' ? 'jobType'
    ORDER BY x.event_time DESC, x.id DESC LIMIT 1)"""


# -- keys and counts ----------------------------------------------------------------------
def encode_cursor(kind: str, t: datetime, key: object) -> str:
    """An opaque cursor: the list it continues (``kind``, with its direction), time and key."""
    raw = json.dumps([kind, iso(t), str(key)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, field: str = "cursor") -> tuple[datetime, str]:
    """``(time, key)`` of a cursor :func:`encode_cursor` gave out for ``kind``; a 400 otherwise.

    A cursor of another list or direction is refused: versions and events both key on a
    bigint id, and taking one for the other would answer a page that continues nothing.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got, t, key = json.loads(raw)
        when = datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        if got != kind or not isinstance(key, str) or "\x00" in key:
            raise ValueError(key)
        return when, key
    except (ValueError, TypeError):
        raise BadRequest(field, f"is not a cursor this server gave out for this list ({kind}); "
                                "pass `nextCursor` from the previous page") from None


def _count(conn: psycopg.Connection, from_where: str, params: dict[str, Any]) -> tuple[int, bool]:
    """``(count, exact)`` of ``SELECT 1 {from_where}``: exact up to COUNT_CAP, else an estimate."""
    params = {**params, "_cap": COUNT_CAP + 1}
    n = conn.execute(f"SELECT count(*) FROM (SELECT 1 {from_where} LIMIT %(_cap)s) c", params).fetchone()[0]
    if n <= COUNT_CAP:
        return n, True
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 {from_where}", params).fetchone()[0]
    return max(int(plan[0]["Plan"]["Plan Rows"]), COUNT_CAP + 1), False


def _keyset(cursor: str | None, offset: int, kind: str) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    if offset:
        raise BadRequest("offset", "page with either `cursor` or `offset`, not both")
    return decode_cursor(cursor, kind)


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
    return {"name": r["name"], "createdAt": iso(r["created_at"]), "updatedAt": iso(r["updated_at"]),
            "ownerName": "anonymous", "description": None, "isHidden": False}


_NAMESPACE_SQL = """
SELECT n.*, greatest(n.created_at,
                     (SELECT max(updated_at) FROM jobs j WHERE j.namespace_id = n.id),
                     (SELECT max(updated_at) FROM datasets d WHERE d.namespace_id = n.id)) AS updated_at
FROM namespaces n {where} ORDER BY n.name LIMIT %(l)s OFFSET %(o)s
"""


def list_namespaces(conn: psycopg.Connection, limit: int, offset: int) -> dict:
    rows = _rows(conn, _NAMESPACE_SQL.format(where=""), {"l": limit, "o": offset})
    total = conn.execute("SELECT count(*) FROM namespaces").fetchone()[0]
    return {"namespaces": [_namespace(r) for r in rows], "totalCount": total}


def get_namespace(conn: psycopg.Connection, name: str) -> dict:
    rows = _rows(conn, _NAMESPACE_SQL.format(where="WHERE n.name = %(n)s"), {"n": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("namespace", name)
    return _namespace(rows[0])


# -- datasets -----------------------------------------------------------------------------
_DATASET_SQL = """
SELECT d.*, n.name AS namespace, s.fields
FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
LEFT JOIN dataset_schemas s ON s.id = d.schema_id
WHERE n.id = %(ns)s {extra} AND NOT {hidden}
ORDER BY d.name LIMIT %(l)s OFFSET %(o)s
"""


def marquez_fields(fields: list[dict] | None, tags: dict | None = None, key: tuple[str, str] | None = None) -> list[dict]:
    tags = tags or {}
    return [{"name": f["name"], "type": f.get("type"), "tags": tags.get((*key, f["name"]), []) if key else [],
             "description": f.get("description")} for f in (fields or [])]


_DATASET_HIDDEN = hidden_sql("dataset", "n.name", "d.name", "d.updated_at")
_JOB_HIDDEN = hidden_sql("job", "n.name", "j.name", "j.updated_at")


def _dataset(r: dict, tags: dict | None = None) -> dict:
    key = (r["namespace"], r["name"])
    tags = tags or {}
    return {
        "id": {"namespace": r["namespace"], "name": r["name"]},
        "type": "DB_TABLE",
        "name": r["name"],
        "physicalName": r["name"],
        "createdAt": iso(r["created_at"]),
        "updatedAt": iso(r["updated_at"]),
        "namespace": r["namespace"],
        "sourceName": r["source_name"] or "default",
        "fields": marquez_fields(r["fields"], tags, key),
        "tags": tags.get((*key, ""), []),
        "lastModifiedAt": iso(r["updated_at"]),
        "description": r["description"],
        "currentVersion": r["current_version"],
        "facets": {},
        "deleted": False,
    }


def list_datasets(conn: psycopg.Connection, namespace: str, limit: int, offset: int) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _DATASET_SQL.format(extra="", hidden=_DATASET_HIDDEN), {"ns": ns, "l": limit, "o": offset})
    total = conn.execute(f"SELECT count(*) FROM datasets d JOIN namespaces n ON n.id = d.namespace_id "
                         f"WHERE n.id = %s AND NOT {_DATASET_HIDDEN}", (ns,)).fetchone()[0]
    tags = tags_for(conn, "dataset", [(r["namespace"], r["name"]) for r in rows])
    return {"datasets": [_dataset(r, tags) for r in rows], "totalCount": total}


def get_dataset(conn: psycopg.Connection, namespace: str, name: str) -> dict:
    ns = _namespace_id(conn, namespace)
    rows = _rows(conn, _DATASET_SQL.format(extra="AND d.name = %(name)s", hidden=_DATASET_HIDDEN),
                 {"ns": ns, "name": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("dataset", f"{namespace}:{name}")
    ds = _dataset(rows[0], tags_for(conn, "dataset", [(namespace, name)]))
    ds["columnLineage"] = dataset_column_lineage(conn, namespace, name)
    return ds


_VERSION_SQL = """
SELECT v.*, d.name, n.name AS namespace, d.source_name, d.description, s.fields, r.payload AS raw
FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id JOIN namespaces n ON n.id = d.namespace_id
LEFT JOIN dataset_schemas s ON s.id = v.schema_id
-- Through the event's key, whose recorded_at names its partition (one probed, not all); LEFT:
-- a version whose event a retention archived (lineage maintain retain) is listed, without facets.
LEFT JOIN event_keys k ON k.raw_id = v.raw_event_id
LEFT JOIN raw_events r ON r.id = k.raw_id AND r.recorded_at = k.recorded_at
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
        "createdAt": iso(r["created_at"]),
        "version": r["version"],
        "namespace": r["namespace"],
        "sourceName": r["source_name"] or "default",
        "fields": marquez_fields(r["fields"]),
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


def list_dataset_versions(conn: psycopg.Connection, namespace: str, name: str, limit: int, offset: int,
                          cursor: str | None = None) -> dict:
    """Versions newest first; pages by ``cursor`` (see the module docstring)."""
    d = _dataset_id(conn, namespace, name)
    key = _keyset(cursor, offset, "versions")
    params: dict[str, Any] = {"d": d, "l": limit + 1, "o": offset}
    extra = ""
    if key is not None:
        params["ct"], params["ck"] = key[0], _int_key(key[1])
        extra = "AND (v.created_at, v.id) < (%(ct)s, %(ck)s)"
    rows = _rows(conn, _VERSION_SQL.format(extra=extra), params)
    more, rows = len(rows) > limit, rows[:limit]
    total, exact = _count(conn, "FROM dataset_versions v WHERE v.dataset_id = %(d)s", {"d": d})
    return {"versions": [_version(r) for r in rows], "totalCount": total, "totalCountExact": exact,
            "nextCursor": encode_cursor("versions", rows[-1]["created_at"], rows[-1]["id"]) if more else None}


def get_dataset_version(conn: psycopg.Connection, namespace: str, name: str, version: str) -> dict:
    d = _dataset_id(conn, namespace, name)
    rows = _rows(conn, _VERSION_SQL.format(extra="AND v.version = %(v)s"), {"d": d, "v": version, "l": 1, "o": 0})
    if rows:
        return _version(rows[0])
    if version == origin_version(namespace, name):  # the dataset as first seen, before any run wrote it
        ds = get_dataset(conn, namespace, name)
        return {"id": {"namespace": namespace, "name": name, "version": version}, "type": "DB_TABLE", "name": name,
                "physicalName": name, "createdAt": ds["createdAt"], "version": version, "namespace": namespace,
                "sourceName": ds["sourceName"], "fields": ds["fields"], "tags": [], "description": ds["description"],
                "createdByRun": None, "facets": {}}
    raise NotFound("dataset version", f"{namespace}:{name}@{version}")


def _int_key(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise BadRequest("cursor", "is not a cursor this server gave out; pass `nextCursor` from the previous page") from None


# -- raw events ---------------------------------------------------------------------------
def list_events(conn: psycopg.Connection, *, before: datetime | None, after: datetime | None,
                limit: int, offset: int, namespace: str | None = None, cursor: str | None = None,
                ascending: bool = False) -> dict:
    """Raw events as Marquez's ``/api/v1/events/lineage`` lists them (newest first by default).

    ``before``/``after`` bound ``eventTime`` (inclusive); ``namespace`` is the job's namespace.
    Pages by ``cursor`` over the ``(event_time, id)`` index; see the module docstring for
    ``totalCount``.
    """
    kind = "events:asc" if ascending else "events:desc"
    key = _keyset(cursor, offset, kind)
    params: dict[str, Any] = {"b": before, "a": after, "ns": namespace, "l": limit + 1, "o": offset}
    conds = []
    if before is not None:
        conds.append("event_time <= %(b)s")
    if after is not None:
        conds.append("event_time >= %(a)s")
    if namespace is not None:
        conds.append("job_namespace = %(ns)s")
    where = " AND ".join(conds) or "true"
    page_where = where
    if key is not None:
        params["ct"], params["ck"] = key[0], _int_key(key[1])
        page_where += f" AND (event_time, id) {'>' if ascending else '<'} (%(ct)s, %(ck)s)"
    order = "ASC" if ascending else "DESC"
    rows = conn.execute(
        f"SELECT payload::text, event_time, id FROM raw_events WHERE {page_where} "
        f"ORDER BY event_time {order}, id {order} LIMIT %(l)s OFFSET %(o)s", params
    ).fetchall()
    more, rows = len(rows) > limit, rows[:limit]
    total, exact = _count(conn, f"FROM raw_events WHERE {where}", params)
    return {"events_raw": [r[0] for r in rows], "totalCount": total, "totalCountExact": exact,
            "nextCursor": encode_cursor(kind, rows[-1][1], rows[-1][2]) if more else None}


# Jobs and runs live in their own module; re-exported so callers keep one entry point.
from lineage.store import reads_jobs as _jobs  # noqa: E402

list_jobs, get_job, list_runs, get_run = _jobs.list_jobs, _jobs.get_job, _jobs.list_runs, _jobs.get_run
marquez_run_states, _latest_runs, _run = _jobs.marquez_run_states, _jobs._latest_runs, _jobs._run
