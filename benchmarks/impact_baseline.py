"""The impact query as it stood before the level-by-level walk (merge 3851507), kept only so
that ``benchmarks/impact.py`` can time old and new side by side in one run on the same store.

It walks one row per job (``UNION`` over job ids, one ``job_io`` probe per edge) and joined each
model's writers against the runs by a nested loop.  Not used by the application.
"""

BASELINE = """
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
walk (job_id) AS (
    SELECT id FROM start_job
    UNION
    SELECT e.job_id FROM job_io e JOIN start_ds s ON e.dataset_id = s.id
    WHERE e.direction = 'i' AND (%(as_of)s::timestamptz IS NULL OR e.recorded_at <= %(as_of)s)
    UNION
    SELECT nxt.job_id
    FROM walk w
    JOIN job_io f ON f.job_id = w.job_id AND f.direction = 'o'
    JOIN job_io nxt ON nxt.dataset_id = f.dataset_id AND nxt.direction = 'i'
    WHERE %(as_of)s::timestamptz IS NULL OR (f.recorded_at <= %(as_of)s AND nxt.recorded_at <= %(as_of)s)
),
written AS MATERIALIZED (
    SELECT f.dataset_id, f.job_id FROM job_io f JOIN walk w ON w.job_id = f.job_id
    WHERE f.direction = 'o' AND (%(as_of)s::timestamptz IS NULL OR f.recorded_at <= %(as_of)s)
      AND NOT EXISTS (SELECT 1 FROM start_ds s WHERE s.id = f.dataset_id)
),
trainers AS (
    SELECT w.job_id FROM walk w JOIN jobs j ON j.id = w.job_id JOIN namespaces n ON n.id = j.namespace_id
    WHERE EXISTS (
        SELECT 1 FROM gate_decisions g
        WHERE g.job_namespace = n.name AND g.job_name = j.name AND g.allowed
          AND (g.purpose = %(training)s OR g.purpose LIKE %(training)s || '.%%')
          AND (%(as_of)s::timestamptz IS NULL OR g.recorded_at <= %(as_of)s))
),
models AS (SELECT DISTINCT x.dataset_id FROM written x JOIN trainers t ON t.job_id = x.job_id),
hit_runs AS (
    -- every run of every job downstream (each such job reads the source or a dataset built from it)
    SELECT r.run_uuid, r.job_id, r.state, r.created_at FROM walk w JOIN runs r ON r.job_id = w.job_id
    WHERE %(as_of)s::timestamptz IS NULL OR r.recorded_at <= %(as_of)s
)
-- One row: each list aggregated (and sorted, by code point) in the server, so 10,000 ids cross
-- the wire as one JSON document rather than 10,000 rows.
SELECT EXISTS (SELECT 1 FROM start_job UNION ALL SELECT 1 FROM start_ds),
  (SELECT coalesce(json_agg(x.id ORDER BY x.id COLLATE "C"), '[]') FROM (
      SELECT 'dataset:' || n.name || ':' || d.name AS id
      FROM (SELECT DISTINCT dataset_id FROM written) ds JOIN datasets d ON d.id = ds.dataset_id
      JOIN namespaces n ON n.id = d.namespace_id) x),
  (SELECT coalesce(json_agg(x.id ORDER BY x.id COLLATE "C"), '[]') FROM (
      SELECT 'job:' || n.name || ':' || j.name AS id
      FROM walk w JOIN jobs j ON j.id = w.job_id JOIN namespaces n ON n.id = j.namespace_id
      WHERE w.job_id NOT IN (SELECT id FROM start_job)) x),
  (SELECT coalesce(json_agg(json_build_object('runId', x.run, 'job', x.job, 'state', x.state, 'createdAt', x.created)
                            ORDER BY x.created, x.run), '[]') FROM (
      SELECT h.run_uuid::text AS run, 'job:' || n.name || ':' || j.name AS job, {state} AS state,
             to_char(h.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created
      FROM hit_runs h JOIN jobs j ON j.id = h.job_id JOIN namespaces n ON n.id = j.namespace_id) x),
  (SELECT coalesce(json_agg(json_build_object('id', x.id, 'trainingRuns', x.runs) ORDER BY x.id COLLATE "C"), '[]') FROM (
      SELECT 'dataset:' || n.name || ':' || d.name AS id,
             coalesce(array_agg(h.run_uuid::text ORDER BY h.run_uuid::text) FILTER (WHERE h.run_uuid IS NOT NULL), '{{}}') AS runs
      FROM models m JOIN datasets d ON d.id = m.dataset_id JOIN namespaces n ON n.id = d.namespace_id
      LEFT JOIN run_io io ON io.dataset_id = m.dataset_id AND io.direction = 'o'
      LEFT JOIN hit_runs h ON h.run_uuid = io.run_uuid
      GROUP BY 1) x)
"""


STATE_AS_OF = """(SELECT s.state FROM run_states s WHERE s.run_uuid = h.run_uuid AND s.recorded_at <= %(as_of)s
                   ORDER BY lineage_state_rank(s.state) DESC, s.event_time DESC LIMIT 1)"""
