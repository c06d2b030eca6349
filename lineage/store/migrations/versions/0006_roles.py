"""Least privilege: an owner, an application and a reader role; erasure only through one function.

Revision ID: 0006
Revises: 0005

Runs as the **owner** role (``lineage.store.migrate.upgrade`` switches to it when connected as
a member such as a superuser).  The role names come from the settings (``LINEAGE_DB_OWNER_ROLE``,
``LINEAGE_DB_APP_ROLE``, ``LINEAGE_DB_READER_ROLE``); the application and reader roles must
exist (``deploy/README.md``; the embedded server and the tests create them) and must be neither
superusers nor members of the owner.

What it does:

* **The erasure switch goes.**  ``raw_events_append_only()`` and ``lineage_append_only()`` (the
  triggers of every append-only table) now refuse UPDATE and TRUNCATE always, and DELETE unless
  :func:`lineage_erasing` holds: the current role *is the table's owner* (no application session
  can become it) *and* this transaction has recorded an erasure.  Both hold only inside
  ``lineage_erase(raw_event_ids bigint[], requested_by text, reason text) → bigint``: SECURITY
  DEFINER, owned by the owner, fixed ``search_path``.  It inserts one row into ``erasures``
  (requested_by, reason, what, the database role that asked, the transaction, at) and deletes the
  raw events with the ``dataset_versions`` derived from them.  The application may execute it;
  what to erase and when is a later issue's.  ``SET lineage.erasure`` no longer means anything.
* **Grants.**  Every table and view in the schema: SELECT to the application and the reader.  A
  table with an append-only trigger gets INSERT only; any other table (derived, rewritten by
  ingest) INSERT, UPDATE and DELETE; ``alembic_version`` and ``erasures`` nothing more.  TRUNCATE
  to nobody; the rebuild's reset of the derived tables is ``lineage_clear_derived()``, a SECURITY
  DEFINER function the application may execute.  Sequences: USAGE to the application.  The
  database: CONNECT and TEMPORARY (ingest's staging tables) to the application, CONNECT to the
  reader, nothing to PUBLIC; CREATE on the schema to nobody but its owner.
* **Later migrations.**  ``ALTER DEFAULT PRIVILEGES`` gives every table the owner creates later
  SELECT, INSERT, UPDATE, DELETE to the application and SELECT to the reader, and every sequence
  USAGE.  A later migration declares a table append-only with one call, which installs the
  triggers and revokes UPDATE, DELETE and TRUNCATE from everyone::

      op.execute("SELECT lineage_make_append_only('my_table')")

  A table that exists when this migration runs and carries a trigger whose function's name
  contains ``append_only`` (0002's pattern, e.g. in a 0004 or 0005 re-chained before this one)
  is detected by it and gets the append-only grants; a trigger function of its own that still
  honours ``lineage.erasure`` must be replaced by ``lineage_append_only()`` (only the two
  functions above are rewritten here).  A later SECURITY DEFINER function must
  ``REVOKE EXECUTE ... FROM PUBLIC`` itself: default privileges let everyone execute functions.
"""
from alembic import op

from lineage.store.roles import migration_roles as _roles, quoted as _q

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The derived tables the rebuild resets (lineage.store.ingest.rebuild), children first.
DERIVED = ("job_io", "run_io", "dataset_versions", "runs", "jobs", "datasets", "dataset_schemas", "namespaces")
_TRIGGER_FUNCTIONS = ("raw_events_append_only", "lineage_append_only")


CHECKS = """
DO $$
DECLARE app text; tbl_owner text;
BEGIN
    FOREACH app IN ARRAY ARRAY[{app_lit}, {reader_lit}] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
            RAISE EXCEPTION 'database role % does not exist: create it first (deploy/README.md)', app;
        END IF;
        IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = app) THEN
            RAISE EXCEPTION 'database role % is a superuser or bypasses row security: it must not be', app;
        END IF;
        IF app = current_user OR pg_has_role(app, current_user, 'MEMBER') THEN
            RAISE EXCEPTION 'database role % is (a member of) the owner %: it must not be', app, current_user;
        END IF;
    END LOOP;
    SELECT pg_get_userbyid(relowner) INTO tbl_owner FROM pg_class WHERE oid = '{schema}.raw_events'::regclass;
    IF tbl_owner <> current_user THEN
        RAISE EXCEPTION 'raw_events is owned by %, not by the migrating role %: migrate as the owner role, or transfer the tables to it first (deploy/README.md)', tbl_owner, current_user;
    END IF;
END $$;
"""

SCHEMA = """
CREATE TABLE erasures (
    id           bigserial   PRIMARY KEY,
    requested_by text        NOT NULL CHECK (btrim(requested_by) <> ''),
    reason       text        NOT NULL CHECK (btrim(reason) <> ''),
    what         jsonb       NOT NULL,               -- {{"raw_events": [ids], "dataset_versions": n}}
    db_role      text        NOT NULL DEFAULT session_user,   -- who connected, not the definer
    xact         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasures_xact ON erasures (xact);

-- May a DELETE on table `rel` go through?  Only as the table's owner, in a transaction that
-- has recorded an erasure.  Names are schema-qualified: the caller's search_path (which puts
-- pg_temp first) must not be able to substitute an `erasures` of its own.
CREATE FUNCTION lineage_erasing(rel oid) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN current_user = (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = rel)
        AND EXISTS (SELECT 1 FROM {schema}.erasures e WHERE e.xact = pg_catalog.pg_current_xact_id());
END $$;
"""

TRIGGER_BODY = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND {schema}.lineage_erasing(TG_RELID) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused; erasure goes through lineage_erase)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

FUNCTIONS = """
CREATE FUNCTION lineage_make_append_only(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE short text := (SELECT relname FROM pg_catalog.pg_class WHERE oid = tbl);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = tbl AND tgname = short || '_append_only') THEN
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION {schema}.lineage_append_only()', short || '_append_only', tbl);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = tbl AND tgname = short || '_no_truncate') THEN
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lineage_append_only()', short || '_no_truncate', tbl);
    END IF;
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, {app}, {reader}', tbl);
    EXECUTE format('GRANT SELECT, INSERT ON %s TO {app}', tbl);
    EXECUTE format('GRANT SELECT ON %s TO {reader}', tbl);
END $$;
REVOKE EXECUTE ON FUNCTION lineage_make_append_only(regclass) FROM PUBLIC;

CREATE FUNCTION lineage_erase(raw_event_ids bigint[], requested_by text, reason text) RETURNS bigint
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
    RETURN erasure;
END $$;
REVOKE EXECUTE ON FUNCTION lineage_erase(bigint[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lineage_erase(bigint[], text, text) TO {app};

-- The rebuild empties the derived tables and restarts their ids; TRUNCATE stays the owner's.
CREATE FUNCTION lineage_clear_derived() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp AS $$
    TRUNCATE {derived} RESTART IDENTITY
$$;
REVOKE EXECUTE ON FUNCTION lineage_clear_derived() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lineage_clear_derived() TO {app};
"""

GRANTS = """
DO $$
DECLARE t record;
BEGIN
    -- The schema: usable by both roles, creatable in by its owner only (PostgreSQL < 15 lets
    -- PUBLIC create in `public`).
    IF pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = {schema_lit}), 'USAGE') THEN
        EXECUTE 'REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC';
        EXECUTE 'GRANT USAGE ON SCHEMA {schema} TO {app}, {reader}';
    ELSE
        RAISE NOTICE 'schema % is not the migrating role''s: ask its owner to REVOKE CREATE FROM PUBLIC', {schema_lit};
    END IF;
    IF pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') THEN
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {app}', current_database());
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO {reader}', current_database());
    END IF;
    FOR t IN
        SELECT c.oid::regclass AS tbl, c.relname, c.relkind,
               EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
                       WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND p.proname LIKE '%append_only%') AS append_only
        FROM pg_class c
        WHERE c.relnamespace = {schema_lit}::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, {app}, {reader}', t.tbl);
        EXECUTE format('GRANT SELECT ON %s TO {app}, {reader}', t.tbl);
        IF t.relname IN ('alembic_version', 'erasures') OR t.relkind NOT IN ('r', 'p') THEN
            CONTINUE;
        ELSIF t.append_only THEN
            EXECUTE format('GRANT INSERT ON %s TO {app}', t.tbl);
        ELSE
            EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO {app}', t.tbl);
        END IF;
    END LOOP;
END $$;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {app};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE ON SEQUENCES TO {app};
SELECT lineage_make_append_only('{schema}.erasures');
REVOKE INSERT ON {schema}.erasures FROM {app};
"""

# Downgrade: the 0001/0002 bodies, the erasure switch included (that is what 0003 had).
OLD_BODY = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('lineage.erasure', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""

DROP = """
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {app}, {reader};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {app};
DROP FUNCTION IF EXISTS lineage_erase(bigint[], text, text);
DROP FUNCTION IF EXISTS lineage_clear_derived();
DROP FUNCTION IF EXISTS lineage_make_append_only(regclass);
DROP TABLE IF EXISTS erasures;
DROP FUNCTION IF EXISTS lineage_erasing(oid);
"""


def _names() -> dict[str, str]:
    roles = _roles()
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar()
    return {
        "app": _q(roles.app), "reader": _q(roles.reader), "schema": _q(schema),
        "app_lit": "'" + roles.app + "'", "reader_lit": "'" + roles.reader + "'",
        "schema_lit": "'" + schema.replace("'", "''") + "'",
    }


def _sql(template: str, **names: str) -> str:
    # Role and schema names are validated identifiers, substituted quoted (`_q`); op.execute
    # takes no parameters here.
    return template.format(**names)


def upgrade() -> None:
    n = _names()
    op.execute(_sql(CHECKS, **n))
    op.execute(_sql(SCHEMA, **n))
    for name in _TRIGGER_FUNCTIONS:
        op.execute(_sql(TRIGGER_BODY, name=name, **n))
    op.execute(_sql(FUNCTIONS, derived=", ".join(f"{n['schema']}.{t}" for t in DERIVED), **n))
    op.execute(_sql(GRANTS, **n))


def downgrade() -> None:
    n = _names()
    for name in _TRIGGER_FUNCTIONS:
        op.execute(_sql(OLD_BODY, name=name, **n))
    op.execute(_sql(DROP, **n))
