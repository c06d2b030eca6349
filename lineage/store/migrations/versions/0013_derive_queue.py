"""Raw first, derive after: the queue of stored events whose graph is not derived yet.

Revision ID: 0013
Revises: 0012

HTTP ingest acknowledges an event once its raw row is committed; the derived tables (jobs,
datasets, runs, edges, versions, column lineage) are written later by derivation workers
(``lineage derive``, or threads inside ``lineage serve``).  The raw rows and one
``derive_queue`` row naming them commit in one transaction, so an acknowledged event is
always either derived or queued.  A worker claims queue rows with ``FOR UPDATE SKIP LOCKED``,
derives their events and deletes the rows in one transaction: a worker killed mid-way leaves
its rows to the next, and deriving an event twice changes nothing (every derived write is an
idempotent upsert).

One row per committed group (a batch, or the single events of one group commit), not per
event: the queue costs one small insert per commit, whatever the batch size.

The queue is working state, not a record: rows are deleted once derived, so it is neither
append-only nor in the ledger (the raw events it names are both).
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE derive_queue (
        id          bigserial   PRIMARY KEY,
        raw_ids     bigint[]    NOT NULL CHECK (cardinality(raw_ids) > 0),
        -- The transaction's time, as the raw rows' recorded_at: it names their partition.
        recorded_at timestamptz NOT NULL DEFAULT now(),
        enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """)
    # An event whose raw row was stored but whose graph the store refuses (a value past an index
    # limit that validation let through): kept and visible, never retried forever.
    op.execute("""
    CREATE TABLE derive_refusals (
        raw_id      bigint      PRIMARY KEY,
        reason      text        NOT NULL,
        refused_at  timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """)
    # Autovacuum early: the table is written and emptied all the time.
    op.execute("ALTER TABLE derive_queue SET (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS derive_queue, derive_refusals")
