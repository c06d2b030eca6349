"""Impact: everything built from a node, at any depth, as one recursive query.

:func:`impact` answers "what was built from this source?": every job downstream of the node
(a dataset or a job), every dataset those jobs wrote, every run of those jobs (each of
them reads the node or a dataset built from it), and which of the datasets are *models*, with the runs
that produced each one.  One statement over the indexed edge tables (``job_io`` for the walk,
``runs`` by job for runs, ``run_io`` for the runs that wrote each model), whatever the depth.

**How it stays fast.**  The walk goes up to :data:`LEVEL_DEPTH` levels at once (one row per
level carrying arrays; each level two index scans with ``= ANY(array)`` rather than one probe
per edge), then one row per job for whatever lies deeper, so it stays linear on a chain
thousands of jobs deep; a job already seen is not expanded again, so cycles end it and no
depth limit is needed.  What it reached is gathered into two arrays, and every later lookup
(names, outputs, runs, the models' writers) is again one ``= ANY(array)`` index scan; the runs
that wrote each model are found from the models' ``run_io`` entries and matched to the
reached runs by hash.  Each list is sorted and built as JSON in the server, so the answer is
one row.  ``benchmarks/results/impact.md`` has the figures against the previous query.

**What is a model.**  The gate is what stands before training (``DESIGN.md``), so a dataset
is a model when a job that writes it was checked by the gate for a training purpose: a data
use at or under ``train_ai_system`` in the Fides taxonomy, allowed.  The rule reads the
decision log only, so it holds for any pipeline whose training runs ask the gate, whatever
their namespaces and names are called.

**As of.**  With ``as_of`` the answer is what had been *recorded* by then (the store's
``recorded_at``, which a producer cannot set): edges, runs, gate decisions and each run's
state at that moment.  The start node must have been recorded by then too, or it is
:class:`~lineage.errors.NotFound`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from lineage.errors import NotFound
from lineage.events.ids import NodeId
from lineage.times import iso

TRAINING_PURPOSE = "train_ai_system"

# Levels walked at once before the walk goes on one row per job (see the query).  Lineage is
# rarely deeper; past it, the per-level cost of dropping seen jobs would grow with depth.
LEVEL_DEPTH = 8

_IMPACT = """
WITH RECURSIVE
start_job AS (
    SELECT j.id FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
    WHERE %(type)s = 'job' AND n.name = %(ns)s AND j.name = %(name)s
      AND (%(as_of)s::timestamptz IS NULL OR j.recorded_at <= %(as_of)s)
),
start_ds AS (
    SELECT d.id FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
    WHERE %(type)s = 'dataset' AND n.name = %(ns)s AND d.name = %(name)s
      AND (%(as_of)s::timestamptz IS NULL OR d.recorded_at <= %(as_of)s)
),
-- The walk, in two phases.  First up to LEVEL_DEPTH levels at once: one row per level
-- carrying arrays, each level two index scans with `= ANY(array)` (the jobs' outputs, then
-- their readers: one pass over the sorted keys rather than one probe per edge), and a job seen
-- at an earlier level dropped (EXCEPT), so a cycle ends it.  Dropping re-reads the seen set at
-- every level, which is why the levels stop there: whatever the last level reached is walked
-- on one row per job (UNION over job ids: linear however deep; a cycle ends it too).
levels (depth, jobs, seen) AS (
    SELECT 0, s.jobs, s.jobs FROM (SELECT ARRAY(
        SELECT id FROM start_job
        UNION
        SELECT e.job_id FROM job_io e JOIN start_ds s ON e.dataset_id = s.id
        WHERE e.direction = 'i' AND (%(as_of)s::timestamptz IS NULL OR e.recorded_at <= %(as_of)s)) AS jobs) s
    UNION ALL
    SELECT w.depth + 1, nx.jobs, w.seen || nx.jobs
    FROM levels w
    CROSS JOIN LATERAL (SELECT ARRAY(
        SELECT e.job_id FROM job_io e
        WHERE e.dataset_id = ANY(ARRAY(
                SELECT f.dataset_id FROM job_io f
                WHERE f.job_id = ANY(w.jobs) AND f.direction = 'o'
                  AND (%(as_of)s::timestamptz IS NULL OR f.recorded_at <= %(as_of)s)))
          AND e.direction = 'i' AND (%(as_of)s::timestamptz IS NULL OR e.recorded_at <= %(as_of)s)
        EXCEPT SELECT unnest(w.seen)) AS jobs OFFSET 0) nx  -- OFFSET 0: computed once per level
    WHERE cardinality(w.jobs) > 0 AND w.depth < %(level_depth)s
),
walk (job_id) AS (
    SELECT unnest(jobs) FROM levels WHERE depth = %(level_depth)s
    UNION
    SELECT nxt.job_id
    FROM walk w
    JOIN job_io f ON f.job_id = w.job_id AND f.direction = 'o'
    JOIN job_io nxt ON nxt.dataset_id = f.dataset_id AND nxt.direction = 'i'
    WHERE %(as_of)s::timestamptz IS NULL OR (f.recorded_at <= %(as_of)s AND nxt.recorded_at <= %(as_of)s)
),
-- Every job reached and every dataset they wrote, as two arrays: each later lookup is one
-- index scan with `= ANY(array)`, and a dataset written by several jobs is looked up once.
reached AS MATERIALIZED (
    SELECT r.jobs, ARRAY(SELECT f.dataset_id FROM job_io f
                         WHERE f.job_id = ANY(r.jobs) AND f.direction = 'o'
                           AND (%(as_of)s::timestamptz IS NULL OR f.recorded_at <= %(as_of)s)) AS outs
    FROM (SELECT ARRAY(SELECT unnest(jobs) FROM levels UNION SELECT job_id FROM walk) AS jobs) r
),
hit_jobs AS MATERIALIZED (
    SELECT j.id AS job_id, 'job:' || n.name || ':' || j.name AS id,
           EXISTS (SELECT 1 FROM gate_decisions g
                   WHERE g.job_namespace = n.name AND g.job_name = j.name AND g.allowed
                     AND (g.purpose = %(training)s OR g.purpose LIKE %(training)s || '.%%')
                     AND (%(as_of)s::timestamptz IS NULL OR g.recorded_at <= %(as_of)s)) AS trains
    FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
    WHERE j.id = ANY((SELECT jobs FROM reached)::bigint[])
),
models AS MATERIALIZED (
    SELECT DISTINCT f.dataset_id FROM job_io f
    WHERE f.job_id = ANY(ARRAY(SELECT job_id FROM hit_jobs WHERE trains)) AND f.direction = 'o'
      AND (%(as_of)s::timestamptz IS NULL OR f.recorded_at <= %(as_of)s)
      AND f.dataset_id IS DISTINCT FROM (SELECT id FROM start_ds)
),
hit_runs AS MATERIALIZED (
    -- every run of every job downstream (each such job reads the source or a dataset built from it)
    SELECT r.run_uuid, h.id AS job, r.state, r.created_at FROM runs r JOIN hit_jobs h ON h.job_id = r.job_id
    WHERE r.job_id = ANY((SELECT jobs FROM reached)::bigint[])
      AND (%(as_of)s::timestamptz IS NULL OR r.recorded_at <= %(as_of)s)
),
-- Materialised so the runs that wrote the models are found by the models' index entries and
-- then matched to hit_runs by hash, rather than probing run_io once per run.
model_writes AS MATERIALIZED (
    SELECT io.dataset_id, io.run_uuid FROM run_io io
    WHERE io.dataset_id = ANY(ARRAY(SELECT dataset_id FROM models)) AND io.direction = 'o'
),
trained AS (
    SELECT io.dataset_id, array_agg(h.run_uuid::text ORDER BY h.run_uuid::text) AS runs
    FROM model_writes io JOIN hit_runs h ON h.run_uuid = io.run_uuid
    GROUP BY io.dataset_id
)
-- One row: each list aggregated (and sorted, by code point) in the server, so 10,000 ids cross
-- the wire as one JSON document rather than 10,000 rows.
SELECT EXISTS (SELECT 1 FROM start_job UNION ALL SELECT 1 FROM start_ds),
  (SELECT coalesce(json_agg(x.id ORDER BY x.id COLLATE "C"), '[]') FROM (
      SELECT 'dataset:' || n.name || ':' || d.name AS id
      FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
      WHERE d.id = ANY((SELECT outs FROM reached)::bigint[]) AND d.id IS DISTINCT FROM (SELECT id FROM start_ds)) x),
  (SELECT coalesce(json_agg(h.id ORDER BY h.id COLLATE "C"), '[]') FROM hit_jobs h
      WHERE h.job_id IS DISTINCT FROM (SELECT id FROM start_job)),
  (SELECT coalesce(json_agg(json_build_object('runId', x.run, 'job', x.job, 'state', x.state, 'createdAt', x.created)
                            ORDER BY x.created, x.run), '[]') FROM (
      SELECT h.run_uuid::text AS run, h.job, {state} AS state,
             to_char(h.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created
      FROM hit_runs h) x),
  (SELECT coalesce(json_agg(json_build_object('id', x.id, 'trainingRuns', x.runs) ORDER BY x.id COLLATE "C"), '[]') FROM (
      SELECT 'dataset:' || n.name || ':' || d.name AS id, coalesce(t.runs, '{{}}') AS runs
      FROM models m JOIN datasets d ON d.id = m.dataset_id JOIN namespaces n ON n.id = d.namespace_id
      LEFT JOIN trained t ON t.dataset_id = m.dataset_id) x)
"""

# A run's state as of the moment asked: its latest state recorded by then (run_states is a
# view over raw_events, indexed by run); now: the derived `runs.state`.
_STATE_NOW = "h.state"
_STATE_AS_OF = """(SELECT s.state FROM run_states s WHERE s.run_uuid = h.run_uuid AND s.recorded_at <= %(as_of)s
                   ORDER BY lineage_state_rank(s.state) DESC, s.event_time DESC LIMIT 1)"""


@dataclass
class Impact:
    """What was built from ``start``; lists are sorted, ids in node-id form."""

    start: str
    as_of: datetime | None = None
    datasets: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)  # {runId, job, state, createdAt}
    models: dict[str, list[str]] = field(default_factory=dict)  # model dataset id -> training run ids

    def as_dict(self) -> dict:
        return {
            "nodeId": self.start,
            "asOf": iso(self.as_of) if self.as_of else None,
            "counts": {"datasets": len(self.datasets), "jobs": len(self.jobs), "runs": len(self.runs), "models": len(self.models)},
            "datasets": self.datasets,
            "jobs": self.jobs,
            "runs": self.runs,
            "models": [{"id": m, "trainingRuns": runs} for m, runs in sorted(self.models.items())],
        }


def _params(node: NodeId, as_of: datetime | None) -> dict:
    return {"type": node.type, "ns": node.namespace, "name": node.name, "as_of": as_of, "training": TRAINING_PURPOSE,
            "level_depth": LEVEL_DEPTH}


def impact(conn: psycopg.Connection, node: NodeId, as_of: datetime | None = None) -> Impact:
    """Everything downstream of ``node``, at any depth, as recorded by ``as_of`` (default: now)."""
    query = _IMPACT.format(state=_STATE_AS_OF if as_of is not None else _STATE_NOW)
    found, datasets, jobs, runs, models = conn.execute(query, _params(node, as_of)).fetchone()
    if not found:
        raise NotFound(node.type, f"{node.namespace}:{node.name}" + (f" (as of {iso(as_of)})" if as_of else ""))
    return Impact(start=str(node), as_of=as_of, datasets=datasets, jobs=jobs, runs=runs,
                  models={m["id"]: m["trainingRuns"] for m in models})


def contracts_as_of(conn: psycopg.Connection, node: NodeId, as_of: datetime | None = None) -> list[dict]:
    """The governing state of every contract covering dataset ``node``, as it stood at ``as_of``
    (approved then, though revoked since, reads ``approved``)."""
    from lineage.contracts import registry

    states = registry.contracts_for_datasets(conn, [(node.namespace, node.name)], as_of)
    return [{"id": s.id, "version": s.version, "status": s.status, "ref": s.ref, "changedBy": s.actor, "reason": s.reason}
            for s in sorted(states.get((node.namespace, node.name), []), key=lambda s: s.id)]
