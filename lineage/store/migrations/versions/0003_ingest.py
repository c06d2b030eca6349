"""Ingest notes: what was assumed about a stored event.

Revision ID: 0003
Revises: 0002

``raw_events.normalizations`` lists, one short note each, the assumptions made when an event
was normalised before storing (a time without an offset read as UTC, a date-only nominal time
read as midnight UTC, digits past microseconds rounded).  NULL when nothing was assumed.  The
column is nullable without a default, so adding it rewrites nothing.
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE raw_events ADD COLUMN normalizations text[]")


def downgrade() -> None:
    op.execute("ALTER TABLE raw_events DROP COLUMN IF EXISTS normalizations")
