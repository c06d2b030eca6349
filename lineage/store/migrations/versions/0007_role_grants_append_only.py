"""Role grants are append-only: a grant ends with a ``revoke`` row, never an edit.

Revision ID: 0007
Revises: 0006

``role_grants`` (0004) records every grant and revocation with who and why, and the current
roles are each role's latest row, so editing or deleting a row would rewrite who may approve
contracts.  0006 provides ``lineage_make_append_only``: the triggers, and INSERT/SELECT only
for the application role.  ``api_tokens`` stays as it is: revoking a token sets its
``revoked_at`` (an UPDATE the server makes), and its history is the token's own row.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT lineage_make_append_only('role_grants')")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS role_grants_append_only ON role_grants")
    op.execute("DROP TRIGGER IF EXISTS role_grants_no_truncate ON role_grants")
