"""Lineage graph queries over the indexed job↔dataset edges (``job_io``).

Contract:

* One recursive SQL statement per walk: no per-node lookups, no raw JSON on the read path.
  The cost of a walk grows with the size of its answer, not with the size of the store.
* ``depth`` counts jobs: depth 1 from a dataset reaches the jobs that read (downstream) or
  write (upstream) it and the datasets on their far side; depth 0 is the node alone.
* :func:`upstream` and :func:`downstream` return only what is reached in that direction;
  :func:`lineage` is the union of both, as Marquez's ``/api/v1/lineage`` serves it.
* ``as_of`` restricts the walk to edges recorded at or before that moment.  A start node the
  store knows now but had not recorded then is answered alone, with no edges (as
  :func:`lineage.store.impact.impact` answers it: not found as of then).
* An unknown start node raises :class:`~lineage.errors.NotFound`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import psycopg

from lineage.errors import NotFound
from lineage.events.ids import NodeId, node_id
from lineage.store.reads import PROCESSING_TYPE_SQL, RUN_STATES, marquez_fields, marquez_job_type
from lineage.times import iso

Direction = Literal["upstream", "downstream"]


@dataclass
class Graph:
    """Nodes ``{id, type, namespace, name}`` and edges ``{origin, destination}``, ids as strings."""

    start: str
    nodes: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"nodes": self.nodes, "edges": self.edges}

    def node_ids(self) -> set[str]:
        return {n["id"] for n in self.nodes}


# `near` is the edge direction that leads *into* a job from the walk's side: 'i' (dataset read
# by the job) for downstream, 'o' (dataset written by the job) for upstream; `far` the other.
_WALK = """
WITH RECURSIVE
start_job AS (
    SELECT j.id FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
    WHERE %(type)s = 'job' AND n.name = %(ns)s AND j.name = %(name)s
),
start_ds AS (
    SELECT d.id FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
    WHERE %(type)s = 'dataset' AND n.name = %(ns)s AND d.name = %(name)s
),
walk (job_id, depth) AS (
    SELECT id, 0 FROM start_job
    UNION
    SELECT e.job_id, 1 FROM job_io e JOIN start_ds s ON e.dataset_id = s.id
    WHERE e.direction = %(near)s AND %(depth)s >= 1 AND (%(as_of)s::timestamptz IS NULL OR e.recorded_at <= %(as_of)s)
    UNION
    SELECT nxt.job_id, w.depth + 1
    FROM walk w
    JOIN job_io f ON f.job_id = w.job_id AND f.direction = %(far)s
    JOIN job_io nxt ON nxt.dataset_id = f.dataset_id AND nxt.direction = %(near)s
    WHERE w.depth < %(depth)s
      AND (%(as_of)s::timestamptz IS NULL OR (f.recorded_at <= %(as_of)s AND nxt.recorded_at <= %(as_of)s))
),
reached_jobs AS (SELECT DISTINCT job_id FROM walk),
far_edges AS (
    SELECT e.job_id, e.dataset_id, e.direction FROM job_io e JOIN reached_jobs r ON r.job_id = e.job_id
    WHERE e.direction = %(far)s AND (%(as_of)s::timestamptz IS NULL OR e.recorded_at <= %(as_of)s)
),
reached_ds AS (SELECT dataset_id FROM far_edges UNION SELECT id FROM start_ds),
near_edges AS (
    SELECT e.job_id, e.dataset_id, e.direction FROM job_io e
    JOIN reached_jobs r ON r.job_id = e.job_id
    JOIN reached_ds d ON d.dataset_id = e.dataset_id
    WHERE e.direction = %(near)s AND (%(as_of)s::timestamptz IS NULL OR e.recorded_at <= %(as_of)s)
),
edges AS (SELECT * FROM far_edges UNION SELECT * FROM near_edges)
SELECT e.direction, jn.name, j.name, dn.name, d.name
FROM edges e
JOIN jobs j ON j.id = e.job_id JOIN namespaces jn ON jn.id = j.namespace_id
JOIN datasets d ON d.id = e.dataset_id JOIN namespaces dn ON dn.id = d.namespace_id
UNION ALL
SELECT 's', n.name, x.name, NULL, NULL FROM (
    SELECT namespace_id, name FROM jobs WHERE id IN (SELECT id FROM start_job)
    UNION ALL SELECT namespace_id, name FROM datasets WHERE id IN (SELECT id FROM start_ds)
) x JOIN namespaces n ON n.id = x.namespace_id
"""


def _node(kind: str, namespace: str, name: str) -> dict:
    return {"id": node_id(kind, namespace, name), "type": kind, "namespace": namespace, "name": name}


def walk(conn: psycopg.Connection, node: NodeId, direction: Direction, depth: int, as_of: datetime | None = None) -> Graph:
    """Walk ``depth`` jobs away from ``node`` in ``direction``; see the module docstring."""
    near, far = ("i", "o") if direction == "downstream" else ("o", "i")
    rows = conn.execute(
        _WALK,
        {"type": node.type, "ns": node.namespace, "name": node.name, "near": near, "far": far, "depth": depth, "as_of": as_of},
        prepare=True,
    ).fetchall()
    if not any(r[0] == "s" for r in rows):
        raise NotFound(node.type, f"{node.namespace}:{node.name}")
    graph = Graph(start=str(node))
    nodes: dict[str, dict] = {str(node): _node(node.type, node.namespace, node.name)}
    seen_edges: set[tuple[str, str]] = set()
    for io, jns, jname, dns, dname in rows:
        if io == "s":
            continue
        job = _node("job", jns, jname)
        ds = _node("dataset", dns, dname)
        nodes.setdefault(job["id"], job)
        nodes.setdefault(ds["id"], ds)
        edge = (ds["id"], job["id"]) if io == "i" else (job["id"], ds["id"])
        if edge not in seen_edges:
            seen_edges.add(edge)
            graph.edges.append({"origin": edge[0], "destination": edge[1]})
    graph.nodes = list(nodes.values())
    graph.edges.sort(key=lambda e: (e["origin"], e["destination"]))
    return graph


def upstream(conn: psycopg.Connection, node: NodeId, depth: int = 20, as_of: datetime | None = None) -> Graph:
    return walk(conn, node, "upstream", depth, as_of)


def downstream(conn: psycopg.Connection, node: NodeId, depth: int = 20, as_of: datetime | None = None) -> Graph:
    return walk(conn, node, "downstream", depth, as_of)


def original_sources(graph: Graph) -> list[str]:
    """Dataset ids in an upstream graph that no job in it writes: where the data came from."""
    written = {e["destination"] for e in graph.edges if e["origin"].startswith("job:")}
    return sorted(n["id"] for n in graph.nodes if n["type"] == "dataset" and n["id"] not in written)


def marquez_lineage(conn: psycopg.Connection, node: NodeId, depth: int = 20, as_of: datetime | None = None) -> dict:
    """Marquez's ``{"graph": [{id, type, data, inEdges, outEdges}]}``: both directions, with node data."""
    up = walk(conn, node, "upstream", depth, as_of)
    down = walk(conn, node, "downstream", depth, as_of)
    nodes = {n["id"]: n for n in up.nodes + down.nodes}
    edges = {(e["origin"], e["destination"]) for e in up.edges + down.edges}
    jobs = [(n["namespace"], n["name"]) for n in nodes.values() if n["type"] == "job"]
    datasets = [(n["namespace"], n["name"]) for n in nodes.values() if n["type"] == "dataset"]
    data: dict[str, dict] = {}
    if jobs:
        for ns, name, jtype, desc, loc, created, updated, state, processing in conn.execute(
            f"""SELECT n.name, j.name, j.job_type, j.description, j.location, j.created_at, j.updated_at, r.state,
                      {PROCESSING_TYPE_SQL}
               FROM unnest(%s::text[], %s::text[]) AS k(ns, name)
               JOIN namespaces n ON n.name = k.ns JOIN jobs j ON j.namespace_id = n.id AND j.name = k.name
               LEFT JOIN runs r ON r.run_uuid = j.latest_run_uuid""",
            ([j[0] for j in jobs], [j[1] for j in jobs]),
        ):
            data[node_id("job", ns, name)] = {
                "id": {"namespace": ns, "name": name}, "type": marquez_job_type(processing, jtype), "name": name,
                "namespace": ns, "description": desc, "location": loc, "createdAt": iso(created),
                "updatedAt": iso(updated), "latestRunState": RUN_STATES.get(state, "NEW") if state else None,
            }
    if datasets:
        for ns, name, source, desc, fields, created, updated, version in conn.execute(
            """SELECT n.name, d.name, d.source_name, d.description, s.fields, d.created_at, d.updated_at, d.current_version
               FROM unnest(%s::text[], %s::text[]) AS k(ns, name)
               JOIN namespaces n ON n.name = k.ns JOIN datasets d ON d.namespace_id = n.id AND d.name = k.name
               LEFT JOIN dataset_schemas s ON s.id = d.schema_id""",
            ([d[0] for d in datasets], [d[1] for d in datasets]),
        ):
            data[node_id("dataset", ns, name)] = {
                "id": {"namespace": ns, "name": name}, "type": "DB_TABLE", "name": name, "physicalName": name,
                "namespace": ns, "sourceName": source or "default", "description": desc, "fields": marquez_fields(fields),
                "tags": [], "facets": {}, "createdAt": iso(created), "updatedAt": iso(updated), "currentVersion": version,
            }
    ins: dict[str, list[dict]] = {k: [] for k in nodes}
    outs: dict[str, list[dict]] = {k: [] for k in nodes}
    for o, d in sorted(edges):
        outs[o].append({"origin": o, "destination": d})
        ins[d].append({"origin": o, "destination": d})
    graph = []
    for key, n in nodes.items():
        graph.append({
            "id": key,
            "type": "DATASET" if n["type"] == "dataset" else "JOB",
            "data": data.get(key, {}),
            "inEdges": ins[key],
            "outEdges": outs[key],
        })
    return {"graph": graph}


_IO_MARKS = """
SELECT n.name, d.name,
       (SELECT min(e.recorded_at) FROM job_io e WHERE e.dataset_id = d.id AND e.direction = 'i'),
       (SELECT min(e.recorded_at) FROM job_io e WHERE e.dataset_id = d.id AND e.direction = 'o'),
       (SELECT min(e.recorded_at) FROM job_io e
        JOIN job_io w ON w.job_id = e.job_id AND w.dataset_id = e.dataset_id AND w.direction = 'o'
        WHERE e.dataset_id = d.id AND e.direction = 'i')
FROM unnest(%s::text[], %s::text[]) AS k(ns, name)
JOIN namespaces n ON n.name = k.ns JOIN datasets d ON d.namespace_id = n.id AND d.name = k.name
"""

#: (first recorded read, first recorded write, first recorded read by a job that also writes it)
IoMark = tuple["datetime | None", "datetime | None", "datetime | None"]


def io_marks(conn: psycopg.Connection, datasets: list[tuple[str, str]]) -> dict[tuple[str, str], IoMark]:
    """For each ``(namespace, name)`` the store knows: when it first recorded any job reading it,
    any job writing it, and any job that both reads and writes it reading it (``recorded_at``,
    the store's clock, not the producer's ``eventTime``), over the whole store, not one walk.
    Unknown datasets are absent.  One query."""
    if not datasets:
        return {}
    rows = conn.execute(_IO_MARKS, ([d[0] for d in datasets], [d[1] for d in datasets])).fetchall()
    return {(ns, name): (read, written, self_read) for ns, name, read, written, self_read in rows}
