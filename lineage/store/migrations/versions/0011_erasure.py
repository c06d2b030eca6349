"""Erasure manifests: what must go when a source goes, and what has gone.

Revision ID: 0011
Revises: 0008

* ``erasure_manifests``: one row per erasure a steward requested: the source dataset as the
  store names it (and in Unicode normal form C, ``norm_*``, which is how it is compared), the
  reason, who asked with which credential, the manifest as JSON and a readable summary.
  ``UNIQUE (norm_namespace, norm_name)``: a source is erased once; erasing it again is a
  conflict naming the first manifest.
* ``erasure_items``: every dataset on the manifest (the source included), its kind
  (``source``, ``dataset``, ``model``) and artifact location, with NFC forms indexed: the gate
  and the re-creation check look datasets up here.
* ``erasure_item_events``: what happened to an item since, appended, never updated:
  ``deleted`` (recorded by whoever deleted it: a DAG's token) or ``recreated`` (a run wrote an
  erased dataset again; recorded by the trigger below).  An item is done when it has a
  ``deleted`` event; status is read, never stored.

All three are append-only (``lineage_make_append_only``).

The trigger ``run_io_erased_write`` (once per statement, over its transition table; a no-op
while no erasure exists, so ingest pays nothing for it until then) flags a re-creation at
ingest: when a run's output edge
names a dataset equal (under NFC) to an erased item, and a raw event of the run recorded after
the manifest writes it without a ``lifecycleStateChange`` ``DROP`` facet (the erasure's own
DROP events are deletions, not re-creations), it appends a ``recreated`` event to the item and a refusal to
``gate_decisions`` (``erased_dataset_written``), both idempotent (one per item and run, one
decision id derived from them), so a rebuild that replays the events adds nothing twice.
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE erasure_manifests (
    id              bigserial   PRIMARY KEY,
    source_namespace text       NOT NULL,
    source_name     text        NOT NULL,
    norm_namespace  text        NOT NULL,
    norm_name       text        NOT NULL,
    reason          text        NOT NULL CHECK (btrim(reason) <> ''),
    requested_by    text        NOT NULL CHECK (btrim(requested_by) <> ''),
    credential      text        NOT NULL,
    revoked         text[]      NOT NULL DEFAULT '{}',   -- contract refs revoked by this erasure
    manifest        jsonb       NOT NULL,
    summary         text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (norm_namespace, norm_name)
);

CREATE TABLE erasure_items (
    id             bigserial   PRIMARY KEY,
    manifest_id    bigint      NOT NULL REFERENCES erasure_manifests (id),
    kind           text        NOT NULL CHECK (kind IN ('source', 'dataset', 'model')),
    namespace      text        NOT NULL,
    name           text        NOT NULL,
    norm_namespace text        NOT NULL,
    norm_name      text        NOT NULL,
    location       text,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (manifest_id, norm_namespace, norm_name)
);
CREATE INDEX erasure_items_norm ON erasure_items (norm_namespace, norm_name);

CREATE TABLE erasure_item_events (
    id          bigserial   PRIMARY KEY,
    item_id     bigint      NOT NULL REFERENCES erasure_items (id),
    action      text        NOT NULL CHECK (action IN ('deleted', 'recreated')),
    run_uuid    uuid,                         -- the run that wrote an erased dataset again
    detail      jsonb       NOT NULL DEFAULT '{}',
    recorded_by text        NOT NULL,
    credential  text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasure_item_events_item ON erasure_item_events (item_id, action);
CREATE UNIQUE INDEX erasure_item_events_recreated ON erasure_item_events (item_id, run_uuid) WHERE action = 'recreated';
CREATE UNIQUE INDEX erasure_item_events_deleted ON erasure_item_events (item_id) WHERE action = 'deleted';

CREATE FUNCTION lineage_flag_erased_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE hit record;
BEGIN
    -- One set-based pass per statement; nothing at all to do while no erasure exists.
    IF NOT EXISTS (SELECT 1 FROM erasure_items) THEN
        RETURN NULL;
    END IF;
    FOR hit IN
        SELECT i.id AS item_id, i.manifest_id, nw.run_uuid, n.name AS ns, d.name AS nm, j.name AS job, jn.name AS job_ns
        FROM inserted nw JOIN datasets d ON d.id = nw.dataset_id JOIN namespaces n ON n.id = d.namespace_id
        JOIN erasure_items i ON i.norm_namespace = normalize(n.name, NFC) AND i.norm_name = normalize(d.name, NFC)
        JOIN erasure_manifests m ON m.id = i.manifest_id
        LEFT JOIN runs r ON r.run_uuid = nw.run_uuid
        LEFT JOIN jobs j ON j.id = r.job_id LEFT JOIN namespaces jn ON jn.id = j.namespace_id
        WHERE nw.direction = 'o'
          AND EXISTS (
              SELECT 1 FROM raw_events e
              CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.payload->'outputs', '[]'::jsonb)) AS o(ds)
              WHERE e.run_uuid = nw.run_uuid AND e.recorded_at > m.recorded_at
                AND o.ds->>'namespace' = n.name AND o.ds->>'name' = d.name
                -- the erasure's own DROP event is the deletion, not a re-creation
                AND coalesce(o.ds->'facets'->'lifecycleStateChange'->>'lifecycleStateChange', '') <> 'DROP')
    LOOP
        INSERT INTO erasure_item_events (item_id, action, run_uuid, detail, recorded_by, credential)
        VALUES (hit.item_id, 'recreated', hit.run_uuid,
                jsonb_build_object('namespace', hit.ns, 'name', hit.nm, 'job', coalesce(hit.job_ns || ':' || hit.job, '')),
                'lineage ingest', 'trigger:run_io_erased_write')
        ON CONFLICT DO NOTHING;
        INSERT INTO gate_decisions (decision_id, job_namespace, job_name, purpose, allowed, inputs, reasons, contracts,
                                    validations, facets, decided_at)
        VALUES (md5('erased-write:' || hit.item_id || ':' || hit.run_uuid)::uuid, coalesce(hit.job_ns, ''), coalesce(hit.job, ''),
                '', false,
                jsonb_build_object('inputs', '[]'::jsonb, 'outputs', jsonb_build_array('dataset:' || hit.ns || ':' || hit.nm),
                                   'run', hit.run_uuid::text),
                jsonb_build_array(jsonb_build_object(
                    'code', 'erased_dataset_written',
                    'message', format('run %s wrote `dataset:%s:%s`, which erasure #%s erased: the dataset is back; '
                                      'delete it again and find the writer', hit.run_uuid, hit.ns, hit.nm, hit.manifest_id),
                    'dataset', 'dataset:' || hit.ns || ':' || hit.nm, 'source', NULL, 'contract', NULL, 'clause', NULL)),
                '{}'::jsonb, '[]'::jsonb, '{}'::jsonb, now())
        ON CONFLICT (decision_id) DO NOTHING;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER run_io_erased_write AFTER INSERT ON run_io REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_flag_erased_write();
"""

DROP = """
DROP TRIGGER IF EXISTS run_io_erased_write ON run_io;
DROP FUNCTION IF EXISTS lineage_flag_erased_write();
DROP TABLE IF EXISTS erasure_item_events, erasure_items, erasure_manifests CASCADE;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in ("erasure_manifests", "erasure_items", "erasure_item_events"):
        op.execute(f"SELECT lineage_make_append_only('{table}')")


def downgrade() -> None:
    op.execute(DROP)
