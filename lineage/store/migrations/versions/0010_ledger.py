"""The ledger: every record of accountability enters one queue at commit, and is sealed in blocks.

Revision ID: 0010
Revises: 0008

Runs as the owner role (like 0006).  What it creates:

* ``ledger_tables``: which tables are ledgered, with their primary-key columns (the key that
  names a record in a verification report).  Append-only; nobody but the owner inserts.
* ``ledger_queue``: one row per inserted or updated record (table, key as a JSON array, the
  inserting transaction's ``xid8``), written by a statement-level ``AFTER INSERT`` / ``AFTER
  UPDATE`` trigger from its transition table (one INSERT ... SELECT per statement, so a COPY of
  10,000 events costs one extra statement, not 10,000).  The trigger function is SECURITY
  DEFINER: the application role has no INSERT on the queue, so it cannot forge entries.  The
  sealer (application role) may read and delete queue rows; deleting one only makes its record
  show up as *unledgered* in a verification.
* ``ledger_entries`` (seq, block, table, key, leaf hash, xact) and ``ledger_blocks`` (seq, entry
  range, previous block hash, Merkle root, block hash, sealed_at): append-only
  (``lineage_make_append_only``), INSERT for the application role, SELECT for the reader.  A
  BEFORE INSERT trigger on ``ledger_blocks`` refuses a block that does not extend the chain
  (next seq, previous hash, next entry range, entries present) — a defence against bugs and
  a confused sealer; against the owner the checkpoints are the defence.

Ledgering a table is one call, from any later migration (the table needs a primary key)::

    op.execute("SELECT lineage_ledger_table('my_table')")

It installs the two triggers, records the table and its key in ``ledger_tables`` and queues
every row the table already holds, so the next seal covers them.
"""
from alembic import op

from lineage.store.roles import migration_roles as _roles, quoted as _q

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Every table whose rows are a record of what happened (0001-0008), in the order they are
# ledgered when this migration runs (their existing rows are queued in this order).
LEDGERED = (
    "raw_events", "contract_documents", "contract_dataset_links", "contract_versions", "gate_decisions",
    "api_tokens", "role_grants", "erasures", "namespace_owners", "namespace_owner_revocations",
    "principal_ties", "principal_tie_revocations",
)


SCHEMA = """
CREATE TABLE ledger_tables (
    name        text        PRIMARY KEY,
    key_columns text[]      NOT NULL CHECK (cardinality(key_columns) > 0),
    added_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_queue (
    id    bigserial PRIMARY KEY,
    tbl   text  NOT NULL,
    pk    jsonb NOT NULL,
    xact  xid8  NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX ledger_queue_xact ON ledger_queue (xact, id);

CREATE TABLE ledger_entries (
    seq   bigint PRIMARY KEY CHECK (seq > 0),
    block bigint NOT NULL,
    tbl   text   NOT NULL,
    pk    jsonb  NOT NULL,
    leaf  bytea  NOT NULL CHECK (length(leaf) = 32),
    xact  xid8   NOT NULL
);
CREATE INDEX ledger_entries_block ON ledger_entries (block, seq);

CREATE TABLE ledger_blocks (
    seq         bigint      PRIMARY KEY CHECK (seq > 0),
    first_entry bigint      NOT NULL,
    last_entry  bigint      NOT NULL CHECK (last_entry >= first_entry),
    prev_hash   bytea       NOT NULL CHECK (length(prev_hash) = 32),
    merkle_root bytea       NOT NULL CHECK (length(merkle_root) = 32),
    block_hash  bytea       NOT NULL CHECK (length(block_hash) = 32),
    sealed_at   timestamptz NOT NULL
);

-- Statement-level: one INSERT ... SELECT per statement whatever its row count.  TG_ARGV[0] is
-- the key column list, quoted by lineage_ledger_table (only the owner creates triggers).
CREATE FUNCTION lineage_ledger_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp AS $$
BEGIN
    EXECUTE format('INSERT INTO {schema}.ledger_queue (tbl, pk) SELECT %L, jsonb_build_array(%s) FROM ledger_new',
                   TG_TABLE_NAME, TG_ARGV[0]);
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION lineage_ledger_enqueue() FROM PUBLIC;

CREATE FUNCTION lineage_ledger_table(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    short text := (SELECT relname FROM pg_catalog.pg_class WHERE oid = tbl);
    cols text[];
    quoted text;
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.ord) INTO cols
    FROM pg_catalog.pg_index i
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = tbl AND i.indisprimary;
    IF cols IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key: the ledger names each record by its key', tbl;
    END IF;
    quoted := (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) AS c);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS ledger_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lineage_ledger_enqueue(%L)', short || '_ledger_insert', tbl, quoted);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING NEW TABLE AS ledger_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lineage_ledger_enqueue(%L)', short || '_ledger_update', tbl, quoted);
    INSERT INTO {schema}.ledger_tables (name, key_columns) VALUES (short, cols);
    EXECUTE format('INSERT INTO {schema}.ledger_queue (tbl, pk) SELECT %L, jsonb_build_array(%s) FROM %s ORDER BY %s',
                   short, quoted, tbl, quoted);
END $$;
REVOKE EXECUTE ON FUNCTION lineage_ledger_table(regclass) FROM PUBLIC;

-- A block must extend the chain: the next seq, the previous block's hash, the next entries,
-- all of them present.  (The hashes themselves are checked by `lineage audit verify`.)
CREATE FUNCTION lineage_ledger_block_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last {schema}.ledger_blocks;
BEGIN
    SELECT * INTO last FROM {schema}.ledger_blocks ORDER BY seq DESC LIMIT 1;
    IF NEW.seq <> coalesce(last.seq, 0) + 1
       OR NEW.prev_hash <> coalesce(last.block_hash, '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
       OR NEW.first_entry <> coalesce(last.last_entry, 0) + 1
       OR (SELECT count(*) FROM {schema}.ledger_entries e WHERE e.block = NEW.seq) <> NEW.last_entry - NEW.first_entry + 1
       OR EXISTS (SELECT 1 FROM {schema}.ledger_entries e WHERE e.block = NEW.seq AND e.seq NOT BETWEEN NEW.first_entry AND NEW.last_entry)
    THEN
        RAISE EXCEPTION 'ledger block % does not extend the chain', NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_blocks_extend BEFORE INSERT ON ledger_blocks FOR EACH ROW EXECUTE FUNCTION lineage_ledger_block_check();

SELECT lineage_make_append_only('ledger_tables');
SELECT lineage_make_append_only('ledger_entries');
SELECT lineage_make_append_only('ledger_blocks');
REVOKE INSERT ON ledger_tables FROM {app};
REVOKE ALL ON ledger_queue FROM PUBLIC, {app}, {reader};
GRANT SELECT, DELETE ON ledger_queue TO {app};
GRANT SELECT ON ledger_queue TO {reader};
"""

DROP = """
DROP TABLE IF EXISTS ledger_blocks, ledger_entries, ledger_queue, ledger_tables CASCADE;
DROP FUNCTION IF EXISTS lineage_ledger_table(regclass);
DROP FUNCTION IF EXISTS lineage_ledger_enqueue() CASCADE;
DROP FUNCTION IF EXISTS lineage_ledger_block_check() CASCADE;
"""


def upgrade() -> None:
    roles = _roles()
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar()
    # Role and schema names are validated identifiers, substituted quoted.
    op.execute(SCHEMA.format(schema=_q(schema), app=_q(roles.app), reader=_q(roles.reader)))
    for table in LEDGERED:
        op.execute(f"SELECT lineage_ledger_table('{table}')")


def downgrade() -> None:
    for table in LEDGERED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_ledger_insert ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_ledger_update ON {table}")
    op.execute(DROP)
