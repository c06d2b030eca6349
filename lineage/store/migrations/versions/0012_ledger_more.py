"""The tables added beside the ledger enter it too: tags, soft deletions, erasure manifests.

Revision ID: 0012
Revises: 0011

0010 ledgers the tables of 0001-0008; the tag and soft-delete records (0009) and the erasure
tables (0011) were written in parallel with it, so they join here, with their existing rows
queued.  An erasure's record is exactly what a regulator asks to see and what an interested
party would most like to edit; a soft delete hides a dataset from every listing.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("tag_definitions", "tag_changes", "node_deletions", "erasure_manifests", "erasure_items", "erasure_item_events")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"SELECT lineage_ledger_table('{table}')")


def downgrade() -> None:
    # ledger_tables is append-only for everyone else; the owner undoing this migration may.
    op.execute("ALTER TABLE ledger_tables DISABLE TRIGGER USER")
    for table in reversed(TABLES):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_ledger_insert ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_ledger_update ON {table}")
        op.execute(f"DELETE FROM ledger_tables WHERE name = '{table}'")
    op.execute("ALTER TABLE ledger_tables ENABLE TRIGGER USER")
