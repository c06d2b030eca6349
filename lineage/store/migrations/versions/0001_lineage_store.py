"""Lineage store: append-only raw events and the graph derived from them.

Revision ID: 0001
Revises:
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
-- Every accepted OpenLineage event, exactly as received (canonical form), never updated.
CREATE TABLE raw_events (
    id           bigserial PRIMARY KEY,
    event_key    uuid        NOT NULL UNIQUE,          -- hash of the canonical event: idempotency
    kind         text        NOT NULL CHECK (kind IN ('run', 'job', 'dataset')),
    event_type   text,
    event_time   timestamptz NOT NULL,
    run_uuid     uuid,
    job_namespace text,
    job_name     text,
    producer     text        NOT NULL,
    payload      jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX raw_events_event_time ON raw_events (event_time, id);
CREATE INDEX raw_events_run ON raw_events (run_uuid) WHERE run_uuid IS NOT NULL;

-- Append-only: updates are refused; deletes only inside an erasure (a later migration's
-- erasure service sets lineage.erasure for its own transaction).
CREATE FUNCTION raw_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('lineage.erasure', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'raw_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER raw_events_append_only BEFORE UPDATE OR DELETE ON raw_events
    FOR EACH ROW EXECUTE FUNCTION raw_events_append_only();
CREATE TRIGGER raw_events_no_truncate BEFORE TRUNCATE ON raw_events
    FOR EACH STATEMENT EXECUTE FUNCTION raw_events_append_only();

-- Precedence of run states: terminal (2) > START/RUNNING (1) > OTHER (0).
CREATE FUNCTION lineage_state_rank(state text) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN state IN ('COMPLETE', 'FAIL', 'ABORT') THEN 2 WHEN state IN ('START', 'RUNNING') THEN 1 ELSE 0 END
$$;

-- A namespace row is written once and is never a hot spot for concurrent ingest; when it was
-- last updated is read from its jobs and datasets.
CREATE TABLE namespaces (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Distinct schemas, shared by every dataset version that has the same fields.
CREATE TABLE dataset_schemas (
    id     bigserial PRIMARY KEY,
    hash   uuid  NOT NULL UNIQUE,
    fields jsonb NOT NULL
);

-- Is schema `a` (seen at `at`) newer than the current `b` (seen at `bt`)?  Later event time
-- wins; on a tie the larger schema hash wins, so the outcome never depends on arrival order.
CREATE FUNCTION lineage_newer_schema(a bigint, at timestamptz, b bigint, bt timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT a IS NOT NULL AND (b IS NULL OR at > bt OR (at = bt AND a <> b AND
        (SELECT hash FROM dataset_schemas WHERE id = a) > (SELECT hash FROM dataset_schemas WHERE id = b)))
$$;

CREATE TABLE datasets (
    id            bigserial PRIMARY KEY,
    namespace_id  bigint      NOT NULL REFERENCES namespaces (id),
    name          text        NOT NULL,
    source_name   text,
    description   text,
    schema_id     bigint REFERENCES dataset_schemas (id),
    schema_time   timestamptz,                 -- event time of the schema now current
    current_version text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_id, name)
);

CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    namespace_id  bigint      NOT NULL REFERENCES namespaces (id),
    name          text        NOT NULL,
    job_type      text,
    description   text,
    location      text,
    parent_job_id bigint REFERENCES jobs (id),
    latest_run_uuid uuid,
    latest_run_time timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_id, name)
);

CREATE TABLE runs (
    run_uuid        uuid PRIMARY KEY,
    job_id          bigint      NOT NULL REFERENCES jobs (id),
    parent_run_uuid uuid,
    state           text        NOT NULL,
    state_time      timestamptz NOT NULL,      -- event time of the event that set `state`
    started_at      timestamptz,
    ended_at        timestamptz,
    nominal_start   timestamptz,
    nominal_end     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_job ON runs (job_id, created_at DESC);
CREATE INDEX runs_parent ON runs (parent_run_uuid) WHERE parent_run_uuid IS NOT NULL;

-- Every state a run went through, in event time: a view over the raw events themselves
-- (indexed by run), so ingest writes each state once.
CREATE VIEW run_states AS
    SELECT run_uuid, coalesce(event_type, 'OTHER') AS state, event_time, id AS raw_event_id, recorded_at
    FROM raw_events WHERE kind = 'run';

CREATE TABLE dataset_versions (
    id           bigserial PRIMARY KEY,
    dataset_id   bigint      NOT NULL REFERENCES datasets (id),
    version      text        NOT NULL,
    run_uuid     uuid,
    schema_id    bigint REFERENCES dataset_schemas (id),
    raw_event_id bigint      NOT NULL REFERENCES raw_events (id),
    created_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_id, version)
);
CREATE INDEX dataset_versions_created ON dataset_versions (dataset_id, created_at DESC);

-- Run-level edges: which run read ('i') or wrote ('o') which dataset.
CREATE TABLE run_io (
    run_uuid    uuid        NOT NULL,
    dataset_id  bigint      NOT NULL REFERENCES datasets (id),
    direction   "char"      NOT NULL CHECK (direction IN ('i', 'o')),
    event_time  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_uuid, direction, dataset_id)
);
CREATE INDEX run_io_dataset ON run_io (dataset_id, direction);

-- Job-level edges, the graph that lineage queries walk.  first_seen/recorded_at let a query
-- ask "as of" a moment; last_seen tells whether an edge is still in use.
CREATE TABLE job_io (
    job_id      bigint      NOT NULL REFERENCES jobs (id),
    dataset_id  bigint      NOT NULL REFERENCES datasets (id),
    direction   "char"      NOT NULL CHECK (direction IN ('i', 'o')),
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, direction, dataset_id)
);
CREATE INDEX job_io_dataset ON job_io (dataset_id, direction, job_id);
"""

DROP = """
DROP VIEW IF EXISTS run_states;
DROP TABLE IF EXISTS job_io, run_io, dataset_versions, runs, jobs, datasets,
    dataset_schemas, namespaces, raw_events CASCADE;
DROP FUNCTION IF EXISTS raw_events_append_only() CASCADE;
DROP FUNCTION IF EXISTS lineage_state_rank(text);
DROP FUNCTION IF EXISTS lineage_newer_schema(bigint, timestamptz, bigint, timestamptz);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute(DROP)
