"""Identity: API tokens and role grants.

Revision ID: 0004
Revises: 0003

``api_tokens`` holds one row per token: its ``id`` (the public part of ``lin_<id>_<secret>``,
the lookup key), the SHA-256 of its secret (never the secret), the normalised principal it
acts as, its roles, an optional expiry and job-namespace scope, who created it and, once
revoked, who revoked it and when.  A revoked token keeps its row (and its name) for the record.

``role_grants`` is append-only: every grant and every revocation of a role for a person
(an OIDC or proxy identity) is a new row; the roles a person holds now are those whose latest
row is a grant.  So the history of who granted what, and who took it away, is never rewritten.
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ROLES = "ARRAY['emitter','viewer','requester','steward','auditor','admin']::text[]"


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE api_tokens (
            id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{{12,64}}$'),
            name          text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
            secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
            principal     text NOT NULL CHECK (length(principal) BETWEEN 1 AND 320),
            roles         text[] NOT NULL CHECK (cardinality(roles) > 0 AND roles <@ {_ROLES}),
            namespaces    text[] CHECK (namespaces IS NULL OR cardinality(namespaces) > 0),
            expires_at    timestamptz,
            created_by    text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            revoked_at    timestamptz,
            revoked_by    text,
            CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
        )
    """)
    op.execute(f"""
        CREATE TABLE role_grants (
            id         bigserial PRIMARY KEY,
            principal  text NOT NULL CHECK (length(principal) BETWEEN 1 AND 320),
            role       text NOT NULL CHECK (role = ANY ({_ROLES})),
            action     text NOT NULL CHECK (action IN ('grant', 'revoke')),
            actor      text NOT NULL,
            reason     text,
            at         timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX role_grants_principal ON role_grants (principal, role, id DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS role_grants")
    op.execute("DROP TABLE IF EXISTS api_tokens")
