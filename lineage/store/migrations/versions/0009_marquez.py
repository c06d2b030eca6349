"""Marquez parity: tags, soft delete, column lineage and search indexes.

Revision ID: 0009
Revises: 0008

* **Tags** (``tag_definitions``, ``tag_changes``) and **soft deletes** (``node_deletions``)
  are records of who did what and when: append-only (``lineage_make_append_only``), keyed by
  names (``namespace``, ``name``, ``field``), not by the ids of derived rows, so a rebuild of
  the derived tables keeps them.  A tag's current description is its latest definition; a
  target's current tags are the tags whose latest change is ``add``; a node is hidden while its
  latest deletion is later than its last event (a new event brings it back, as in Marquez).
* **Column lineage** (``column_lineage``) is derived from the OpenLineage ``columnLineage``
  dataset facet at ingest, one row per (output field, input field), with the transformation
  the latest event gave.  It is a derived table: ``lineage_clear_derived()`` now empties it too,
  and the rebuild derives it again.  Fields are addressed by ``md5`` keys of
  ``[namespace, name, field]`` so that names of any length can be indexed.
* **Search**: trigram GIN indexes on ``lower(name)`` of datasets and jobs when the ``pg_trgm``
  extension can be created (it is a trusted extension: the owner of the database may create
  it); otherwise btree ``text_pattern_ops`` indexes, which serve prefix matches only.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = r"""
-- The key of a node in the tables below and of a field in column_lineage.
CREATE FUNCTION lineage_node_key(VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT md5(to_jsonb(parts)::text)::uuid
$$;

CREATE TABLE tag_definitions (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 255),
    description text,
    recorded_by text        NOT NULL CHECK (btrim(recorded_by) <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tag_definitions_name ON tag_definitions (name, id DESC);

CREATE TABLE tag_changes (
    id          bigserial   PRIMARY KEY,
    target      text        NOT NULL CHECK (target IN ('dataset', 'job', 'field')),
    namespace   text        NOT NULL,
    name        text        NOT NULL,
    field       text        NOT NULL DEFAULT '',          -- '' unless target = 'field'
    tag         text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('add', 'remove')),
    recorded_by text        NOT NULL CHECK (btrim(recorded_by) <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tag_changes_target ON tag_changes (lineage_node_key(target, namespace, name), id DESC);

CREATE TABLE node_deletions (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('dataset', 'job')),
    namespace   text        NOT NULL,
    name        text        NOT NULL,
    recorded_by text        NOT NULL CHECK (btrim(recorded_by) <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_deletions_name ON node_deletions USING hash (name);   -- any length; equality only


CREATE TABLE column_lineage (
    out_key        uuid        NOT NULL,
    in_key         uuid        NOT NULL,
    out_namespace  text        NOT NULL,
    out_name       text        NOT NULL,
    out_field      text        NOT NULL,
    in_namespace   text        NOT NULL,
    in_name        text        NOT NULL,
    in_field       text        NOT NULL,
    transformation_type        text,
    transformation_description text,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (out_key, in_key)
);
CREATE INDEX column_lineage_in ON column_lineage (in_key);
-- A dataset's fields, both as outputs and as inputs.
CREATE INDEX column_lineage_out_ds ON column_lineage (lineage_node_key(out_namespace, out_name));
CREATE INDEX column_lineage_in_ds ON column_lineage (lineage_node_key(in_namespace, in_name));
"""

SEARCH_TRGM = """
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%): search indexes serve prefix matches only', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_opclass WHERE opcname = 'gin_trgm_ops') THEN
        -- fastupdate off: ingest keeps writing these tables, and a GIN pending list would be
        -- scanned linearly by every search until the next vacuum.
        CREATE INDEX datasets_name_search ON datasets USING gin (lower(name) gin_trgm_ops) WITH (fastupdate = off);
        CREATE INDEX jobs_name_search ON jobs USING gin (lower(name) gin_trgm_ops) WITH (fastupdate = off);
    ELSE
        CREATE INDEX datasets_name_search ON datasets (lower(name) text_pattern_ops);
        CREATE INDEX jobs_name_search ON jobs (lower(name) text_pattern_ops);
    END IF;
END $$;
-- Whole-name and prefix matches, and names in order (search's tiers walk it and stop at a page).
CREATE INDEX datasets_name_lower ON datasets ((lower(name) COLLATE "C"), id);
CREATE INDEX jobs_name_lower ON jobs ((lower(name) COLLATE "C"), id);
CREATE INDEX datasets_created ON datasets (created_at);
CREATE INDEX jobs_created ON jobs (created_at);
"""

DERIVED = ("column_lineage", "job_io", "run_io", "dataset_versions", "runs", "jobs", "datasets", "dataset_schemas", "namespaces")
OLD_DERIVED = DERIVED[1:]

CLEAR = """
CREATE OR REPLACE FUNCTION lineage_clear_derived() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp AS $$
    TRUNCATE {tables} RESTART IDENTITY
$$;
REVOKE EXECUTE ON FUNCTION lineage_clear_derived() FROM PUBLIC;
"""


def _schema() -> str:
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar()
    return '"' + schema.replace('"', '""') + '"'


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in ("tag_definitions", "tag_changes", "node_deletions"):
        op.execute(f"SELECT lineage_make_append_only('{table}')")
    op.execute(SEARCH_TRGM)
    schema = _schema()
    # CREATE OR REPLACE keeps the EXECUTE grant 0006 gave the application role.
    op.execute(CLEAR.format(schema=schema, tables=", ".join(f"{schema}.{t}" for t in DERIVED)))


def downgrade() -> None:
    schema = _schema()
    op.execute(CLEAR.format(schema=schema, tables=", ".join(f"{schema}.{t}" for t in OLD_DERIVED)))
    op.execute("""
        DROP INDEX IF EXISTS datasets_name_search, jobs_name_search, datasets_name_lower, jobs_name_lower,
            datasets_created, jobs_created;
        DROP TABLE IF EXISTS column_lineage, node_deletions, tag_changes, tag_definitions;
        DROP FUNCTION IF EXISTS lineage_node_key(text[]);
    """)
