"""The group commit's store as a server-side function: ``lineage_store_group(rows text)``.

Revision ID: 0015
Revises: 0014

HTTP ingest stores each group of concurrent single events (up to 64 events and 4 MB) in one
statement: the events as one JSON array text (each row's columns, the canonical payload as
``p``), from which the function claims the keys in ``event_keys`` (key order, ``ON CONFLICT
DO NOTHING``), stores the claimed rows in ``raw_events`` and queues their ids in
``derive_queue``, returning how many it stored (``lineage.store.ingest.store_group``).

Why a function and not the statement itself: the client then sends ``SELECT
lineage_store_group($1)``, which costs nothing to plan and need not be a named prepared
statement, while PL/pgSQL keeps the plan of the statement inside per server session.  Behind
a transaction-mode pooler a client-side prepared statement can be run, under its name, on a
session where that name means another client's statement; this one is never prepared there.

``SECURITY INVOKER``: it runs with the caller's privileges (the application role's column
grants on ``raw_events`` and ``event_keys``), and the tables' triggers (append-only, ledger,
claims) hold as for any insert.
"""
from alembic import op

from lineage.store.roles import migration_roles as _roles, quoted as _q

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


FUNCTION = r"""
CREATE FUNCTION lineage_store_group(rows text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, {schema}, pg_temp AS $$
DECLARE
    stored bigint;
BEGIN
    WITH input AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(rows::jsonb)
            AS x(k uuid, kind text, t text, at timestamptz, r uuid, jns text, jn text, pr text, p jsonb, nz text[])),
    claimed AS (
        INSERT INTO {schema}.event_keys (event_key, raw_id)
        SELECT k, nextval('{schema}.raw_events_id_seq') FROM input ORDER BY k
        ON CONFLICT (event_key) DO NOTHING RETURNING event_key, raw_id),
    kept AS (
        INSERT INTO {schema}.raw_events (id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name,
                                         producer, payload, normalizations)
        SELECT c.raw_id, i.k, i.kind, i.t, i.at, i.r, i.jns, i.jn, i.pr, i.p, i.nz
        FROM claimed c JOIN input i ON i.k = c.event_key
        RETURNING id),
    queued AS (
        INSERT INTO {schema}.derive_queue (raw_ids) SELECT array_agg(id ORDER BY id) FROM kept HAVING count(*) > 0)
    SELECT count(*) INTO stored FROM kept;
    RETURN stored;
END $$;
REVOKE EXECUTE ON FUNCTION lineage_store_group(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lineage_store_group(text) TO {app};
"""


def upgrade() -> None:
    roles = _roles()
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar()
    # Role and schema names are validated identifiers, substituted quoted.
    op.execute(FUNCTION.format(schema=_q(schema), app=_q(roles.app)))


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS lineage_store_group(text)")
