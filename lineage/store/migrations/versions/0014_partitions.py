"""Partitioned history: ``raw_events`` by month of ``recorded_at``; global idempotency in ``event_keys``; retentions.

Revision ID: 0014
Revises: 0013

Runs as the owner role (like 0006 and 0010).  What it does, and why:

* **``raw_events`` becomes ``PARTITION BY RANGE (recorded_at)``**, one partition a month
  (``raw_events_YYYY_MM``, created ahead by ``lineage maintain partitions``; this migration
  creates the current month and two ahead) and a ``DEFAULT`` partition, so ingest never fails
  when maintenance did not run (``maintain partitions`` moves rows out of it into their month,
  in one transaction).  The existing table is renamed and *attached* as the first partition,
  ``raw_events_before_0014`` (MINVALUE up to the first month boundary after its newest row):
  no row is copied, its ids, ``recorded_at`` and so its ledger leaves are unchanged.  The
  columns are the old ones (``LIKE``), in the same order, with the same defaults and checks.
  ``recorded_at``, not ``event_time``: it is set by the server (``now()``), so a client cannot
  aim an event at an old partition, and retention drops what was *recorded* before a date.
* **Idempotency is ``event_keys``** (``event_key`` primary key, ``raw_id`` unique,
  ``recorded_at``), not a unique index on ``raw_events``: a unique index on a partitioned
  table must contain the partition key, and ``(event_key, recorded_at)`` would let the same
  event be stored once a month.  A writer *claims* its keys first (``INSERT ... ON CONFLICT
  DO NOTHING RETURNING``, in key order: racing writers wait for each other, never deadlock, and
  the loser gets nothing back) and then stores only the rows it claimed.  A statement-level
  trigger on ``raw_events`` (``raw_events_keyed``, one anti-join over the statement's
  transition table) refuses any row whose ``(event_key, id, recorded_at)`` is not a claim, so
  a writer that skips the claim, or claims one key and stores another, fails: with
  ``event_key`` and ``raw_id`` unique in ``event_keys`` and ``(id, recorded_at)`` the primary
  key of ``raw_events``, no event is stored twice, in any partition.  The key lookup moves
  from a 3 KB-row table to a 40-byte-row one, and the partitions carry no ``event_key`` index.
  Keys outlive retention (a late retry of an archived event is still a duplicate; about 100
  bytes an event), and are deleted with their event by ``lineage_erase`` (as the unique index
  entry was).  The application may not set ``recorded_at`` on either table (column grants):
  it is always the inserting transaction's time.
* **Foreign keys** to ``raw_events(id)`` (only ``dataset_versions.raw_event_id``) now name
  ``event_keys(raw_id)``: a version still names the event it came from after the event's
  partition is retained.  ``lineage_erase`` deletes the versions, the events, then their keys.
* **Guarantees kept.**  The append-only row trigger is defined on the parent (PostgreSQL clones
  it to every partition, so ``lineage_erasing`` sees the partition, owned by the owner as the
  parent is); ``BEFORE TRUNCATE`` is on the parent and on each partition (statement triggers
  are not cloned).  The ledger's statement-level ``AFTER INSERT/UPDATE`` triggers with a
  transition table are allowed on a partitioned table (not on a partition) and fire for rows
  routed to any partition with ``TG_TABLE_NAME`` the parent's: leaves keep naming
  ``raw_events`` with key ``[id]`` (``ledger_tables`` is unchanged).  Grants: the application
  has SELECT and column INSERT on the parent and *nothing* on a partition (privileges are
  checked on the table a statement names), so it can neither write into a partition past the
  claim check and the ledger trigger (which fire only on statements naming the parent) nor
  read around row-level checks; DETACH, DROP and TRUNCATE are the owner's.  Indexes on the
  parent (so on each partition): ``(id, recorded_at)`` primary key, ``(event_time, id)``,
  ``(run_uuid)`` where not null.
* **``retentions``** (append-only, ledgered): one row per partition archived and dropped by
  ``lineage maintain retain``: its range, the ids it held (an ``int8multirange``), the row
  count, the archive file and its SHA-256.  ``lineage audit verify`` counts a sealed
  ``raw_events`` record that is gone and whose id a retention names as *retained*, not deleted;
  with ``--archive DIR`` it re-hashes every archived record against its ledger leaf.
* ``event_keys`` is append-only (INSERT and SELECT for the application) but not ledgered: each
  of its rows repeats the ``event_key``, ``id`` and ``recorded_at`` of a ``raw_events`` row,
  whose leaf covers them; an owner deleting a claim can only let an event be stored again,
  which the ledger then records like any other.
* **Not partitioned:** ``ledger_entries`` (one row per record, ~100 bytes) is what verifies
  every block's Merkle root, retained events included, so it is kept whole; dropping it by
  range would need block-level archives, a later step.  ``ledger_queue`` is transient (the
  sealer deletes what it seals).  ``gate_decisions`` grows with training runs, not events.
  Derived tables are rebuilt from ``raw_events``: after a retention a rebuild no longer has
  the archived events (their derived rows go with ``lineage_clear_derived()``).
"""
from alembic import op

from lineage.store.roles import migration_roles as _roles, quoted as _q

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

LEGACY = "raw_events_before_0014"
#: pg_advisory lock of partition maintenance and retention ("partit" in ASCII); lineage.store.partitions.
MAINTENANCE_LOCK = 0x706172746974


# Column INSERT for the application: everything but recorded_at, which is always now().
RAW_INSERT_COLUMNS = ("id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer, payload,"
                      " normalizations")

SCHEMA = r"""
-- The claims.  Filled from the existing events; the unique key index goes with the old table.
CREATE TABLE event_keys (
    event_key   uuid        PRIMARY KEY,
    raw_id      bigint      NOT NULL UNIQUE,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO event_keys (event_key, raw_id, recorded_at) SELECT event_key, id, recorded_at FROM raw_events ORDER BY event_key;

ALTER TABLE dataset_versions DROP CONSTRAINT dataset_versions_raw_event_id_fkey;
ALTER TABLE dataset_versions ADD CONSTRAINT dataset_versions_raw_event_id_fkey
    FOREIGN KEY (raw_event_id) REFERENCES event_keys (raw_id);

-- The old table: its triggers and key constraints go (the parent's replace them).
DROP TRIGGER raw_events_append_only ON raw_events;
DROP TRIGGER raw_events_no_truncate ON raw_events;
DROP TRIGGER raw_events_ledger_insert ON raw_events;
DROP TRIGGER raw_events_ledger_update ON raw_events;
ALTER TABLE raw_events DROP CONSTRAINT raw_events_event_key_key;
ALTER TABLE raw_events DROP CONSTRAINT raw_events_pkey;
ALTER TABLE raw_events RENAME TO {legacy};
ALTER INDEX raw_events_event_time RENAME TO {legacy}_event_time;
ALTER INDEX raw_events_run RENAME TO {legacy}_run;

CREATE TABLE raw_events (LIKE {legacy} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (recorded_at);
ALTER SEQUENCE raw_events_id_seq OWNED BY raw_events.id;
ALTER TABLE raw_events ADD PRIMARY KEY (id, recorded_at);
CREATE INDEX raw_events_event_time ON raw_events (event_time, id);
CREATE INDEX raw_events_run ON raw_events (run_uuid) WHERE run_uuid IS NOT NULL;

-- Attach the old table: MINVALUE up to the month boundary after its newest row (or this
-- month's start when it is empty, so the current month gets a partition of its own).
DO $$
DECLARE upper timestamptz;
BEGIN
    SELECT CASE WHEN max(recorded_at) IS NULL THEN date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                ELSE (date_trunc('month', max(recorded_at) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' END
      INTO upper FROM {schema}.{legacy};
    EXECUTE format('ALTER TABLE {schema}.raw_events ATTACH PARTITION {schema}.{legacy} FOR VALUES FROM (MINVALUE) TO (%L)', upper);
END $$;

CREATE OR REPLACE VIEW run_states AS
    SELECT run_uuid, coalesce(event_type, 'OTHER') AS state, event_time, id AS raw_event_id, recorded_at
    FROM raw_events WHERE kind = 'run';

-- Guarantees on the parent (the row trigger is cloned to every partition).
CREATE TRIGGER raw_events_append_only BEFORE UPDATE OR DELETE ON raw_events
    FOR EACH ROW EXECUTE FUNCTION raw_events_append_only();
CREATE TRIGGER raw_events_no_truncate BEFORE TRUNCATE ON raw_events
    FOR EACH STATEMENT EXECUTE FUNCTION raw_events_append_only();
CREATE TRIGGER raw_events_ledger_insert AFTER INSERT ON raw_events REFERENCING NEW TABLE AS ledger_new
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_ledger_enqueue('id');
CREATE TRIGGER raw_events_ledger_update AFTER UPDATE ON raw_events REFERENCING NEW TABLE AS ledger_new
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_ledger_enqueue('id');

-- Every stored row must be a claim: one anti-join per statement, over its transition table.
CREATE FUNCTION lineage_raw_events_keyed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM keyed_new n WHERE NOT EXISTS (
            SELECT 1 FROM {schema}.event_keys k
            WHERE k.event_key = n.event_key AND k.raw_id = n.id AND k.recorded_at = n.recorded_at)) THEN
        RAISE EXCEPTION 'raw_events: a row was stored without claiming its event_key in event_keys (lineage.store.ingest._store_raw)'
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER raw_events_keyed AFTER INSERT ON raw_events REFERENCING NEW TABLE AS keyed_new
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_raw_events_keyed();

SELECT lineage_make_append_only('event_keys');
REVOKE INSERT ON event_keys FROM {app};
GRANT INSERT (event_key, raw_id) ON event_keys TO {app};

REVOKE ALL ON raw_events FROM PUBLIC, {app}, {reader};
GRANT SELECT ON raw_events TO {app}, {reader};
GRANT INSERT ({raw_insert}) ON raw_events TO {app};

-- (ISO dates in UTC while it runs: pg_get_expr writes the bounds in the session's style.)
CREATE FUNCTION lineage_partition_bounds(part oid, OUT range_from timestamptz, OUT range_to timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, {schema}, pg_temp SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC' AS $$
-- The bounds of a range partition of raw_events (NULL: MINVALUE / MAXVALUE); none for DEFAULT.
DECLARE
    expr text := pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = part), part);
    m text[];
BEGIN
    m := regexp_match(expr, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$');
    IF m IS NULL THEN
        RETURN;
    END IF;
    range_from := CASE WHEN m[1] = 'MINVALUE' THEN NULL ELSE btrim(m[1], '''')::timestamptz END;
    range_to := CASE WHEN m[2] = 'MAXVALUE' THEN NULL ELSE btrim(m[2], '''')::timestamptz END;
END $$;

-- A partition is the owner's: nobody else may read or write it directly, and TRUNCATE is refused
-- (statement triggers are not cloned from the parent).
CREATE FUNCTION lineage_protect_partition(part text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = format('{schema}.%I', part)::regclass AND tgname = 'raw_events_no_truncate') THEN
        EXECUTE format('CREATE TRIGGER raw_events_no_truncate BEFORE TRUNCATE ON {schema}.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION {schema}.raw_events_append_only()', part);
    END IF;
    EXECUTE format('REVOKE ALL ON {schema}.%I FROM PUBLIC, {app}, {reader}', part);
END $$;
REVOKE EXECUTE ON FUNCTION lineage_protect_partition(text) FROM PUBLIC;

-- Monthly partitions ahead, and the DEFAULT one; rows the DEFAULT partition caught (maintenance
-- did not run in time) move into their month's new partition.  Returns how many were created,
-- or -1 when another maintenance run holds the advisory lock; the owner's alone.
CREATE FUNCTION lineage_ensure_partitions(months_ahead int, at timestamptz DEFAULT now()) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp SET DateStyle = 'ISO, YMD' SET TimeZone = 'UTC' AS $$
DECLARE
    created int := 0;
    lo timestamptz;
    hi timestamptz;
    part text;
    months timestamptz[];
BEGIN
    IF months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months ahead must be between 0 and 120, not %', months_ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Another maintenance run (a retention writing its archive, another pod) is at work: leave
    -- it to that one rather than queue a server's start behind it.
    IF NOT pg_try_advisory_xact_lock({lock}) THEN
        RETURN -1;
    END IF;
    IF to_regclass('{schema}.raw_events_default') IS NULL THEN
        CREATE TABLE {schema}.raw_events_default PARTITION OF {schema}.raw_events DEFAULT;
        PERFORM lineage_protect_partition('raw_events_default');
        created := created + 1;
    END IF;
    -- The months the DEFAULT partition holds rows of, then this month and those ahead.
    months := ARRAY(
        SELECT DISTINCT date_trunc('month', d.recorded_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM {schema}.raw_events_default d
        UNION
        SELECT (date_trunc('month', at AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC'
        FROM generate_series(0, months_ahead) AS i
        ORDER BY 1);
    FOREACH lo IN ARRAY months LOOP
        hi := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        part := 'raw_events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('{schema}.%I', part)) IS NOT NULL;
        -- A month another partition already covers (the one 0014 attached, say) is left to it.
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            CROSS JOIN LATERAL lineage_partition_bounds(c.oid) b
            WHERE i.inhparent = '{schema}.raw_events'::regclass AND c.relname <> 'raw_events_default'
              AND (b.range_from IS NULL OR b.range_from < hi) AND (b.range_to IS NULL OR b.range_to > lo));
        IF EXISTS (SELECT 1 FROM {schema}.raw_events_default d WHERE d.recorded_at >= lo AND d.recorded_at < hi) THEN
            -- Detach DEFAULT, create the month, move its rows (straight into the partition: they
            -- are claimed and ledgered already, and keep every column), attach DEFAULT again;
            -- one transaction, so a crash leaves the rows where they were.
            ALTER TABLE {schema}.raw_events DETACH PARTITION {schema}.raw_events_default;
            EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.raw_events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            EXECUTE format('INSERT INTO {schema}.%I SELECT * FROM {schema}.raw_events_default WHERE recorded_at >= %L AND recorded_at < %L',
                           part, lo, hi);
            ALTER TABLE {schema}.raw_events_default DISABLE TRIGGER USER;
            DELETE FROM {schema}.raw_events_default d WHERE d.recorded_at >= lo AND d.recorded_at < hi;
            ALTER TABLE {schema}.raw_events_default ENABLE TRIGGER USER;
            ALTER TABLE {schema}.raw_events ATTACH PARTITION {schema}.raw_events_default DEFAULT;
        ELSE
            EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.raw_events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        END IF;
        PERFORM lineage_protect_partition(part);
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;
REVOKE EXECUTE ON FUNCTION lineage_ensure_partitions(int, timestamptz) FROM PUBLIC;

-- The rows a retention archived and dropped.  Written by the owner (lineage maintain retain).
CREATE TABLE retentions (
    id             bigserial      PRIMARY KEY,
    tbl            text           NOT NULL CHECK (tbl = 'raw_events'),
    partition_name text           NOT NULL UNIQUE,
    range_from     timestamptz,                          -- NULL: MINVALUE
    range_to       timestamptz    NOT NULL,
    ids            int8multirange NOT NULL,
    row_count      bigint         NOT NULL CHECK (row_count >= 0),
    archive        text           NOT NULL,              -- file name, relative to the archive directory
    archive_sha256 text           NOT NULL CHECK (archive_sha256 ~ '^[0-9a-f]{{64}}$'),
    db_role        text           NOT NULL DEFAULT session_user,
    at             timestamptz    NOT NULL DEFAULT now()
);
SELECT lineage_make_append_only('retentions');
REVOKE INSERT ON retentions FROM {app};
SELECT lineage_ledger_table('retentions');

-- Erasure: the versions, the events, then their keys (which the versions referenced).
CREATE OR REPLACE FUNCTION lineage_erase(raw_event_ids bigint[], requested_by text, reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp AS $$
DECLARE
    ids bigint[];
    versions bigint;
    erasure bigint;
BEGIN
    IF coalesce(btrim(lineage_erase.requested_by), '') = '' OR coalesce(btrim(lineage_erase.reason), '') = '' THEN
        RAISE EXCEPTION 'an erasure needs who requested it and why' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ids := ARRAY(SELECT r.id FROM {schema}.raw_events r WHERE r.id = ANY(raw_event_ids) ORDER BY r.id);
    SELECT count(*) INTO versions FROM {schema}.dataset_versions v WHERE v.raw_event_id = ANY(ids);
    INSERT INTO {schema}.erasures (requested_by, reason, what)
        VALUES (lineage_erase.requested_by, lineage_erase.reason,
                jsonb_build_object('raw_events', to_jsonb(ids), 'dataset_versions', versions))
        RETURNING id INTO erasure;
    DELETE FROM {schema}.dataset_versions v WHERE v.raw_event_id = ANY(ids);
    DELETE FROM {schema}.raw_events r WHERE r.id = ANY(ids);
    DELETE FROM {schema}.event_keys k WHERE k.raw_id = ANY(ids);
    RETURN erasure;
END $$;
REVOKE EXECUTE ON FUNCTION lineage_erase(bigint[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lineage_erase(bigint[], text, text) TO {app};
"""


def upgrade() -> None:
    roles = _roles()
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar()
    # Role and schema names are validated identifiers, substituted quoted.
    op.execute(SCHEMA.format(schema=_q(schema), app=_q(roles.app), reader=_q(roles.reader), legacy=LEGACY,
                             raw_insert=RAW_INSERT_COLUMNS, lock=MAINTENANCE_LOCK))
    op.execute(f"SELECT lineage_protect_partition('{LEGACY}')")
    # The DEFAULT partition, the current month and two ahead.
    op.execute("SELECT lineage_ensure_partitions(2)")


def downgrade() -> None:
    raise NotImplementedError("0014 is not reversible: partitions may hold rows a plain table would need copied "
                              "back; restore from a backup taken before the upgrade")
