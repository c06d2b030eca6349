"""Search datasets and jobs by name: ranked, paged, answered from indexes.

``q`` is matched case-insensitively against names as a SQL ``LIKE`` pattern: ``%`` matches any
run of characters, as Marquez documents it, but ``_`` is a literal underscore (Marquez makes it
a one-character wildcard; names are mostly snake_case, and a wildcard there would turn every
such search into a scan of all names sharing the text before it).  A
pattern without three letters or digits in a row (``an``, ``a%b``, ``a_b``) matches names that *start*
with it: no index can find names that merely contain two characters, and reading every name
would make a one-keystroke search the slowest of all.  The
default order is by **relevance**: names that match ``q`` whole first, then names that start
with it, then names that contain it; within a tier by lower-cased name (C collation), then by
namespace.  ``sort=name`` orders every match by name, ``sort=updated_at`` newest first.
``filter`` keeps datasets or jobs; ``namespace`` one namespace; deleted (hidden) nodes never
match.

Statements are never server-prepared (``prepare=False``): a generic plan cannot see the
pattern, so it could not use an index range for a prefix.  Each tier is its own ``LIMIT``-ed query over an index (migration 0009): an expression btree
on ``lower(name) COLLATE "C"`` serves the whole-name and prefix tiers and walks names in order
for broad matches; a trigram GIN index on ``lower(name)`` serves the contains tier for rare
ones.  So a page costs about ``offset + limit`` index entries per tier, however many names
match.  ``totalCount`` counts matches exactly up to :data:`SEARCH_COUNT_CAP`, then is
PostgreSQL's estimate and says so (``totalCountExact`` false), as the growing lists do.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime, time, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lineage.store import reads
from lineage.store.tags import hidden_sql
from lineage.times import iso

_TABLES = {
    "DATASET": ("datasets", "d", hidden_sql("dataset", "n.name", "t.name", "t.updated_at")),
    "JOB": ("jobs", "j", hidden_sql("job", "n.name", "t.name", "t.updated_at")),
}

_BRANCH = """(SELECT '{kind}' AS type, n.name AS namespace, t.name, t.updated_at, {rank} AS rank, lower(t.name) COLLATE "C" AS lname, t.id
    FROM {table} t JOIN namespaces n ON n.id = t.namespace_id
    WHERE {match} {extra} AND NOT {hidden}
    ORDER BY {order} LIMIT %(k)s)"""

_LNAME = 'lower(t.name) COLLATE "C"'
# Whole name, prefix, contains: each tier excludes the ones before it.
_TIERS = [
    f"{_LNAME} LIKE %(p)s",
    f"{_LNAME} LIKE %(p)s || '%%' AND NOT {_LNAME} LIKE %(p)s",
    f"lower(t.name) LIKE '%%' || %(p)s || '%%' AND NOT {_LNAME} LIKE %(p)s || '%%'",
]
_ANY = "lower(t.name) LIKE '%%' || %(p)s || '%%'"
_PREFIX = f"{_LNAME} LIKE %(p)s || '%%'"

#: Search counts matches exactly up to here (a broad query matches most names; counting them
#: all would cost more than the page), then answers an estimate with ``totalCountExact`` false.
SEARCH_COUNT_CAP = 1000


def _pattern(q: str) -> str:
    """``q`` as a LIKE pattern: ``%`` stays a wildcard, ``_`` is a literal underscore (see the
    module docstring), a backslash escapes the next character, a trailing one is literal."""
    out, i, p = [], 0, q.lower()
    while i < len(p):
        c = p[i]
        if c == "\\":
            out.append(p[i:i + 2] if i + 1 < len(p) else "\\\\")
            i += 2
            continue
        out.append("\\_" if c == "_" else c)
        i += 1
    return "".join(out)


def _trigram_able(p: str) -> bool:
    """Does the pattern hold 3 letters or digits in a row (pg_trgm's words), which a trigram index can look up?"""
    return any(re.search(r"[^\W_]{3}", run) for run in p.split("%"))


def _extra(namespace: str | None, before: date | None, after: date | None) -> str:
    conds = []
    if namespace is not None:
        conds.append("AND n.name = %(ns)s")
    if before is not None:
        conds.append("AND t.updated_at < %(before)s")
    if after is not None:
        conds.append("AND t.updated_at >= %(after)s")
    return " ".join(conds)


def build(q: str, *, kinds: list[str], sort: str | None, limit: int, offset: int, namespace: str | None = None,
          before: date | None = None, after: date | None = None, tiers: tuple[int, ...] = (0, 1, 2),
          few: frozenset[str] = frozenset()) -> tuple[str, dict[str, Any], str]:
    """``(page SQL, params, match condition)`` of a search over the relevance ``tiers`` asked for
    (the benchmark explains the SQL too)."""
    params: dict[str, Any] = {
        "p": _pattern(q), "k": offset + limit, "l": limit, "o": offset, "ns": namespace,
        "before": datetime.combine(before, time(), timezone.utc) if before else None,
        "after": datetime.combine(after, time(), timezone.utc) if after else None,
    }
    extra = _extra(namespace, before, after)
    short = not _trigram_able(params["p"])
    branches = []
    for kind in kinds:
        table, _, hidden = _TABLES[kind]
        if sort in ("name", "updated_at"):
            order = f"{_LNAME}, t.id" if sort == "name" else "t.updated_at DESC, t.id"
            branches.append(_BRANCH.format(kind=kind, table=table, rank=0, match=_PREFIX if short else _ANY, extra=extra,
                                           hidden=hidden, order=order))
        else:
            for rank in tiers:
                if rank == 2 and short:
                    continue
                order = f"{_LNAME}, t.id"
                if rank == 2 and kind in few:
                    # Few names contain q (counted): sort them, found by the trigram index, rather
                    # than walk every name in order looking for them (an expression no index has
                    # keeps the planner off that walk).
                    order = f"({_LNAME} || ''), t.id"
                branches.append(_BRANCH.format(kind=kind, table=table, rank=rank, match=_TIERS[rank], extra=extra,
                                               hidden=hidden, order=order))
    final = {"name": "lname, namespace, type", "updated_at": "updated_at DESC, lname, namespace, type"}.get(
        sort or "", "rank, lname, namespace, type")
    sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) hits ORDER BY {final} LIMIT %(l)s OFFSET %(o)s"
    return sql, params, (_PREFIX if short else _ANY) + " " + extra


def _page(conn: psycopg.Connection, q: str, kinds: list[str], sort: str | None, limit: int, offset: int,
          few: frozenset[str], **filters: Any) -> list[dict]:
    """The page's rows.  By relevance, the whole-name and prefix tiers go first; the contains
    tier (the costly one when most names start with ``q``) runs only when they do not fill
    ``offset + limit`` rows, since its rows rank after theirs."""
    with conn.cursor(row_factory=dict_row) as cur:
        if sort in ("name", "updated_at"):
            sql, params, _ = build(q, kinds=kinds, sort=sort, limit=limit, offset=offset, **filters)
            return cur.execute(sql, params, prepare=False).fetchall()
        sql, params, _ = build(q, kinds=kinds, sort=None, limit=offset + limit, offset=0, tiers=(0, 1), **filters)
        first = cur.execute(sql, params, prepare=False).fetchall()
        if len(first) >= offset + limit or not _trigram_able(params["p"]):
            return first[offset:offset + limit]
        sql, params, _ = build(q, kinds=kinds, sort=None, limit=offset + limit - len(first), offset=0, tiers=(2,),
                               few=few, **filters)
        rest = cur.execute(sql, params, prepare=False).fetchall()
        return (first + rest)[offset:offset + limit]


def _count(conn: psycopg.Connection, kinds: list[str], where: str, params: dict[str, Any]) -> dict[str, tuple[int, bool, float]]:
    """Each kind's ``(matches, exact, rows in its table)``: matches counted in one statement up
    to the cap, then estimated; the table's size as the planner knows it."""
    froms = [f"FROM {_TABLES[k][0]} t JOIN namespaces n ON n.id = t.namespace_id WHERE {where} AND NOT {_TABLES[k][2]}"
             for k in kinds]
    params = {**params, "_cap": SEARCH_COUNT_CAP + 1}
    counts = conn.execute(
        "SELECT " + ", ".join(f"(SELECT count(*) FROM (SELECT 1 {f} LIMIT %(_cap)s) c), "
                              f"(SELECT reltuples FROM pg_class WHERE oid = '{_TABLES[k][0]}'::regclass)" for k, f in zip(kinds, froms)),
        params, prepare=False).fetchone()
    out = {}
    for i, (kind, f) in enumerate(zip(kinds, froms)):
        n, size = counts[2 * i], float(counts[2 * i + 1] or 0)
        exact = n <= SEARCH_COUNT_CAP
        if not exact:
            plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 {f}", params, prepare=False).fetchone()[0]
            n = max(int(plan[0]["Plan"]["Plan Rows"]), SEARCH_COUNT_CAP + 1)
        out[kind] = (n, exact, size)
    return out


def search(conn: psycopg.Connection, q: str, *, kinds: list[str], sort: str | None, limit: int, offset: int,
           namespace: str | None = None, before: date | None = None, after: date | None = None) -> dict:
    """Marquez's ``SearchResultList``: ``{"totalCount", "totalCountExact", "results": [...]}``."""
    _, params, where = build(q, kinds=kinds, sort=sort, limit=limit, offset=offset, namespace=namespace, before=before,
                             after=after)
    counts = _count(conn, kinds, where, params)
    # Sorting what the trigram index finds reads every match; walking names in order reads about
    # (offset + limit) x size / matches names.  Take the smaller.
    few = frozenset(k for k, (n, exact, size) in counts.items() if exact or n * n <= (offset + limit) * size)
    rows = _page(conn, q, kinds, sort, limit, offset, few, namespace=namespace, before=before, after=after)
    total, exact = sum(c[0] for c in counts.values()), all(c[1] for c in counts.values())
    results = [{"type": r["type"], "name": r["name"], "updatedAt": iso(r["updated_at"]), "namespace": r["namespace"],
                "nodeId": f"{r['type'].lower()}:{r['namespace']}:{r['name']}"} for r in rows]
    return {"totalCount": total, "totalCountExact": exact, "results": results}


def highlight(name: str, q: str) -> str:
    """``name`` HTML-escaped, with the first literal match of ``q`` in ``<em>``: safe to render as HTML."""
    needle = q.split("%")[0] if q.split("%")[0] else q.replace("%", "")
    m = re.search(re.escape(needle), name, re.IGNORECASE) if needle else None
    if m is None:
        return html.escape(name)
    return html.escape(name[:m.start()]) + "<em>" + html.escape(m.group()) + "</em>" + html.escape(name[m.end():])


def search_v2(conn: psycopg.Connection, q: str, kind: str, limit: int) -> dict:
    """Marquez's ``/api/v2beta/search/{jobs,datasets}``: ``{"hits": [...], "highlights": [...]}``.

    Marquez answers these from OpenSearch documents of the latest events; here each hit is a
    job or dataset of the ranked search with its latest run's id and state and its facets.
    """
    found = search(conn, q, kinds=[kind], sort=None, limit=limit, offset=0)["results"]
    if not found:
        return {"hits": [], "highlights": []}
    keys = ([r["namespace"] for r in found], [r["name"] for r in found])
    hits = []
    if kind == "JOB":
        rows = {(r["ns"], r["name"]): r for r in reads._rows(conn, """
            SELECT n.name AS ns, j.name, j.latest_run_uuid, r.state, j.job_type,
                   (SELECT x.payload -> 'job' -> 'facets' FROM raw_events x WHERE x.run_uuid = j.latest_run_uuid
                    ORDER BY x.event_time DESC, x.id DESC LIMIT 1) AS facets,
                   (SELECT x.payload -> 'run' -> 'facets' FROM raw_events x WHERE x.run_uuid = j.latest_run_uuid
                    ORDER BY x.event_time DESC, x.id DESC LIMIT 1) AS run_facets
            FROM unnest(%(ns)s::text[], %(n)s::text[]) k(ns, name)
            JOIN namespaces n ON n.name = k.ns JOIN jobs j ON j.namespace_id = n.id AND j.name = k.name
            LEFT JOIN runs r ON r.run_uuid = j.latest_run_uuid""", {"ns": keys[0], "n": keys[1]})}
        for f in found:
            r = rows.get((f["namespace"], f["name"]), {})
            hits.append({"run_id": str(r["latest_run_uuid"]) if r.get("latest_run_uuid") else None, "name": f["name"],
                         "namespace": f["namespace"], "eventType": r.get("state"), "type": r.get("job_type") or "BATCH",
                         "facets": r.get("facets") or {}, "runFacets": r.get("run_facets") or {}})
    else:
        rows = {(r["ns"], r["name"]): r for r in reads._rows(conn, """
            SELECT n.name AS ns, d.name, s.fields, v.run_uuid, rr.state
            FROM unnest(%(ns)s::text[], %(n)s::text[]) k(ns, name)
            JOIN namespaces n ON n.name = k.ns JOIN datasets d ON d.namespace_id = n.id AND d.name = k.name
            LEFT JOIN dataset_schemas s ON s.id = d.schema_id
            LEFT JOIN dataset_versions v ON v.dataset_id = d.id AND v.version = d.current_version
            LEFT JOIN runs rr ON rr.run_uuid = v.run_uuid""", {"ns": keys[0], "n": keys[1]})}
        for f in found:
            r = rows.get((f["namespace"], f["name"]), {})
            facets = {"schema": {"fields": r["fields"]}} if r.get("fields") else {}
            hits.append({"run_id": str(r["run_uuid"]) if r.get("run_uuid") else None, "name": f["name"],
                         "namespace": f["namespace"], "eventType": r.get("state"), "facets": facets})
    return {"hits": hits, "highlights": [{"name": [highlight(h["name"], q)]} for h in hits]}
