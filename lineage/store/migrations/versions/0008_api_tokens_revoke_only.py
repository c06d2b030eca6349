"""API tokens can be revoked, and nothing else: no un-revoking, no new roles, no deletion.

Revision ID: 0008
Revises: 0007

A token's row is its whole history (who created it, when, for whom, with which roles, and who
revoked it), and the server's only legitimate change is to revoke a live token.  Without this
trigger the application role could give a token new roles, move it to another principal or
bring a revoked one back.  The trigger allows an UPDATE only when it sets ``revoked_at`` and
``revoked_by`` on a token that had neither and leaves every other column as it was; DELETE and
TRUNCATE are refused.  The application role does not own the table, so it cannot disable it.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UP = """
CREATE FUNCTION lineage_api_tokens_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.revoked_by IS NOT NULL
       AND (NEW.id, NEW.name, NEW.secret_sha256, NEW.principal, NEW.roles, NEW.namespaces, NEW.expires_at,
            NEW.created_by, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.name, OLD.secret_sha256, OLD.principal, OLD.roles, OLD.namespaces, OLD.expires_at,
            OLD.created_by, OLD.created_at)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'api_tokens rows can only be revoked (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER api_tokens_revoke_only BEFORE UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION lineage_api_tokens_revoke_only();
CREATE TRIGGER api_tokens_no_truncate BEFORE TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_api_tokens_revoke_only();
"""


def upgrade() -> None:
    op.execute(UP)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_tokens_no_truncate ON api_tokens")
    op.execute("DROP TRIGGER IF EXISTS api_tokens_revoke_only ON api_tokens")
    op.execute("DROP FUNCTION IF EXISTS lineage_api_tokens_revoke_only()")
