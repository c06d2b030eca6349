"""More Marquez reads: graph node details, sources, run facets and the home page's stats.

Shapes follow Marquez's REST API (see :mod:`lineage.store.reads` for the conventions: times by
:func:`~lineage.times.iso`, run states as Marquez names them).

* :func:`enrich_graph` completes ``/api/v1/lineage`` for the Marquez UI: job nodes get
  ``latestRun`` (the UI colours a node by ``latestRun.state``), ``latestRuns`` and ``tags``,
  dataset nodes their ``tags``; deleted (hidden) nodes and their edges are left out.
* Sources are the datasets' ``sourceName`` values (the OpenLineage ``dataSource`` facet's name,
  or ``default``); a source's ``connectionUrl`` is the namespace of its first dataset (the
  OpenLineage naming spec makes a dataset namespace its data source's URI) and its ``type`` is
  that URI's scheme in capitals.
* Stats: ``period`` ``DAY`` gives 24 hourly buckets ending with the current hour, ``WEEK``
  7 daily buckets ending today, both in ``timezone`` (IANA).  ``lineage-events`` counts the
  events of each type by event time; ``jobs``, ``datasets`` and ``sources`` count the ones
  first seen in each bucket.  Every query is an index range scan over one period.
"""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg.rows import dict_row

from lineage.errors import BadRequest, NotFound
from lineage.events import parse_node_id
from lineage.store.reads import _latest_runs, _rows
from lineage.store.tags import hidden_sql, tags_for
from lineage.times import iso


# -- the lineage graph ------------------------------------------------------------------------
def enrich_graph(conn: psycopg.Connection, result: dict) -> dict:
    """Add ``latestRun``/``latestRuns``/``tags`` to the graph's nodes; drop hidden nodes (one query each)."""
    graph = result["graph"]
    jobs = [(n["data"]["namespace"], n["data"]["name"]) for n in graph if n["type"] == "JOB" and n["data"]]
    datasets = [(n["data"]["namespace"], n["data"]["name"]) for n in graph if n["type"] == "DATASET" and n["data"]]
    rows = _rows(conn, f"""
        SELECT j.id, n.name AS namespace, j.name, {hidden_sql('job', 'n.name', 'j.name', 'j.updated_at')} AS hidden
        FROM unnest(%(ns)s::text[], %(n)s::text[]) k(ns, name)
        JOIN namespaces n ON n.name = k.ns JOIN jobs j ON j.namespace_id = n.id AND j.name = k.name""",
                 {"ns": [j[0] for j in jobs], "n": [j[1] for j in jobs]}) if jobs else []
    hidden = {f"job:{r['namespace']}:{r['name']}" for r in rows if r["hidden"]}
    if datasets:
        hidden |= {f"dataset:{ns}:{name}" for ns, name, h in conn.execute(
            f"""SELECT n.name, d.name, {hidden_sql('dataset', 'n.name', 'd.name', 'd.updated_at')}
                FROM unnest(%s::text[], %s::text[]) k(ns, name)
                JOIN namespaces n ON n.name = k.ns JOIN datasets d ON d.namespace_id = n.id AND d.name = k.name""",
            ([d[0] for d in datasets], [d[1] for d in datasets])) if h}
    runs = _latest_runs(conn, rows)
    job_ids = {(r["namespace"], r["name"]): r["id"] for r in rows}
    job_tags = tags_for(conn, "job", jobs)
    ds_tags = tags_for(conn, "dataset", datasets)
    out = []
    for node in graph:
        if node["id"] in hidden:
            continue
        data = node["data"]
        if data:
            key = (data["namespace"], data["name"])
            if node["type"] == "JOB":
                latest = runs.get(job_ids.get(key, -1), [])
                data["latestRun"] = latest[0] if latest else None
                data["latestRuns"] = latest
                data["tags"] = job_tags.get((*key, ""), [])
            else:
                data["tags"] = ds_tags.get((*key, ""), [])
                for f in data.get("fields", []):
                    f["tags"] = ds_tags.get((*key, f["name"]), [])
        node["inEdges"] = [e for e in node["inEdges"] if e["origin"] not in hidden]
        node["outEdges"] = [e for e in node["outEdges"] if e["destination"] not in hidden]
        out.append(node)
    return {"graph": out}


def check_visible(conn: psycopg.Connection, node_id: str) -> None:
    """404 for a hidden dataset or job asked for as a graph's centre."""
    node = parse_node_id(node_id)
    table = "datasets" if node.type == "dataset" else "jobs"
    row = conn.execute(
        f"SELECT {hidden_sql(node.type, 'n.name', 't.name', 't.updated_at')} FROM {table} t "
        "JOIN namespaces n ON n.id = t.namespace_id WHERE n.name = %s AND t.name = %s", (node.namespace, node.name)).fetchone()
    if row is not None and row[0]:
        raise NotFound(node.type, f"{node.namespace}:{node.name}")


# -- sources ----------------------------------------------------------------------------------
_SOURCES = """
SELECT coalesce(d.source_name, 'default') AS name, min(d.created_at) AS created_at, max(d.updated_at) AS updated_at,
       (array_agg(n.name ORDER BY d.created_at, d.id))[1] AS url
FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
{where} GROUP BY 1 ORDER BY 1 LIMIT %(l)s OFFSET %(o)s
"""


def _source(r: dict) -> dict:
    url = r["url"] or ""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return {"type": scheme.upper() or "DEFAULT", "name": r["name"], "createdAt": iso(r["created_at"]),
            "updatedAt": iso(r["updated_at"]), "connectionUrl": url, "description": None}


def list_sources(conn: psycopg.Connection, limit: int, offset: int) -> dict:
    rows = _rows(conn, _SOURCES.format(where=""), {"l": limit, "o": offset})
    total = conn.execute("SELECT count(DISTINCT coalesce(source_name, 'default')) FROM datasets").fetchone()[0]
    return {"sources": [_source(r) for r in rows], "totalCount": total}


def get_source(conn: psycopg.Connection, name: str) -> dict:
    rows = _rows(conn, _SOURCES.format(where="WHERE coalesce(d.source_name, 'default') = %(s)s"), {"s": name, "l": 1, "o": 0})
    if not rows:
        raise NotFound("source", name)
    return _source(rows[0])


# -- facets -----------------------------------------------------------------------------------
def run_facets(conn: psycopg.Connection, run_id: uuid.UUID, kind: str) -> dict:
    """The run's (or its job's) facets merged over its events in event time: a later event's facet wins."""
    path = "run" if kind == "run" else "job"
    rows = conn.execute(
        f"SELECT payload -> '{path}' -> 'facets' FROM raw_events WHERE run_uuid = %s ORDER BY event_time, id", (run_id,)
    ).fetchall()
    if not rows:
        raise NotFound("run", str(run_id))
    facets: dict[str, Any] = {}
    for (f,) in rows:
        if isinstance(f, dict):
            facets.update(f)
    return {"runId": str(run_id), "facets": facets}


# -- stats ------------------------------------------------------------------------------------
def _zone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadRequest("timezone", f"`{tz[:64]}` is not an IANA time zone (e.g. `UTC`, `Europe/Paris`)") from None
    return tz


_BUCKETS = """
WITH b AS (
    SELECT s AS local_start, (s AT TIME ZONE %(tz)s) AS t0, ((s + %(step)s::interval) AT TIME ZONE %(tz)s) AS t1
    FROM generate_series(date_trunc(%(unit)s, now() AT TIME ZONE %(tz)s) - (%(n)s - 1) * %(step)s::interval,
                         date_trunc(%(unit)s, now() AT TIME ZONE %(tz)s), %(step)s::interval) s
)
"""


def _period(period: str, tz: str) -> dict:
    if period == "DAY":
        return {"tz": _zone(tz), "unit": "hour", "step": "1 hour", "n": 24}
    return {"tz": _zone(tz), "unit": "day", "step": "1 day", "n": 7}


def lineage_event_stats(conn: psycopg.Connection, period: str, tz: str) -> list[dict]:
    rows = _rows(conn, _BUCKETS + """
        SELECT b.t0, b.t1,
               count(*) FILTER (WHERE e.event_type = 'FAIL') AS fail, count(*) FILTER (WHERE e.event_type = 'START') AS start,
               count(*) FILTER (WHERE e.event_type = 'COMPLETE') AS complete, count(*) FILTER (WHERE e.event_type = 'ABORT') AS abort
        FROM b LEFT JOIN raw_events e ON e.event_time >= b.t0 AND e.event_time < b.t1
        GROUP BY b.t0, b.t1 ORDER BY b.t0""", _period(period, tz))
    return [{"startInterval": iso(r["t0"]), "endInterval": iso(r["t1"]), "fail": r["fail"], "start": r["start"],
             "complete": r["complete"], "abort": r["abort"]} for r in rows]


def interval_stats(conn: psycopg.Connection, what: str, period: str, tz: str) -> list[dict]:
    """New jobs, datasets or sources (first seen) per bucket."""
    if what == "sources":
        seen = "(SELECT coalesce(source_name, 'default') AS k, min(created_at) AS created_at FROM datasets GROUP BY 1)"
    else:
        seen = "jobs" if what == "jobs" else "datasets"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_BUCKETS + f"""
            SELECT b.t0, b.t1, count(x.created_at) AS count
            FROM b LEFT JOIN {seen} x ON x.created_at >= b.t0 AND x.created_at < b.t1
            GROUP BY b.t0, b.t1 ORDER BY b.t0""", _period(period, tz)).fetchall()
    return [{"startInterval": iso(r["t0"]), "endInterval": iso(r["t1"]), "count": r["count"]} for r in rows]
