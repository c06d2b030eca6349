"""Governance: who acted with which credential, four eyes, declared interests, namespace owners.

Revision ID: 0005
Revises: 0004

* ``contract_versions.credential`` and ``contract_documents.registered_credential``: the
  credential that authenticated the actor (``token:NAME``, ``oidc:ISSUER#SUBJECT``, ...).  The
  actor (``actor``/``registered_by``) is the principal's normalised name and ``recorded_at``
  the time, as before.  Rows written before this migration have no credential (NULL).
* ``contract_versions.action`` gains ``endorse``: the first of the two independent approvals a
  contract holding special categories of data needs.  It leaves the status ``proposed``.
* ``namespace_owners``: who owns the jobs of a namespace (recorded by an admin).  Separation of
  duties reads owners from here, never from facets inside posted events.
* ``principal_ties``: declared interests — a principal's investment, employment, family or
  other tie to an organisation (recorded by an admin).  A steward tied to a contract's provider
  or requester organisation may not approve it.

All four tables are append-only; an owner or a tie ends with a row in its revocation table
(one at most per row), never by deleting it.
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE contract_versions ADD COLUMN credential text;
ALTER TABLE contract_documents ADD COLUMN registered_credential text;
ALTER TABLE contract_versions DROP CONSTRAINT contract_versions_action_check;
ALTER TABLE contract_versions ADD CONSTRAINT contract_versions_action_check
    CHECK (action IN ('register', 'endorse', 'approve', 'revoke', 'expire'));

CREATE TABLE namespace_owners (
    id          bigserial   PRIMARY KEY,
    namespace   text        NOT NULL CHECK (namespace <> ''),   -- an OpenLineage job namespace
    owner       text        NOT NULL CHECK (owner <> ''),       -- a principal name, normalised
    recorded_by text        NOT NULL,
    credential  text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX namespace_owners_namespace ON namespace_owners (namespace);

CREATE TABLE namespace_owner_revocations (
    owner_id    bigint      PRIMARY KEY REFERENCES namespace_owners (id),
    reason      text        NOT NULL CHECK (reason <> ''),
    recorded_by text        NOT NULL,
    credential  text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE principal_ties (
    id                bigserial   PRIMARY KEY,
    principal         text        NOT NULL CHECK (principal <> ''),     -- normalised name
    organisation      text        NOT NULL CHECK (organisation <> ''),  -- normalised, compared
    organisation_name text        NOT NULL,                             -- as the admin wrote it
    kind              text        NOT NULL CHECK (kind IN ('investment', 'employment', 'family', 'other')),
    note              text,
    recorded_by       text        NOT NULL,
    credential        text        NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX principal_ties_principal ON principal_ties (principal);

CREATE TABLE principal_tie_revocations (
    tie_id      bigint      PRIMARY KEY REFERENCES principal_ties (id),
    reason      text        NOT NULL CHECK (reason <> ''),
    recorded_by text        NOT NULL,
    credential  text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
"""

TABLES = ("namespace_owners", "namespace_owner_revocations", "principal_ties", "principal_tie_revocations")

TRIGGERS = "\n".join(
    f"""
CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t}
    FOR EACH ROW EXECUTE FUNCTION lineage_append_only();
CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_append_only();
"""
    for t in TABLES
)

DROP = """
DROP TABLE IF EXISTS principal_tie_revocations, principal_ties, namespace_owner_revocations, namespace_owners CASCADE;
ALTER TABLE contract_versions DROP CONSTRAINT contract_versions_action_check;
ALTER TABLE contract_versions ADD CONSTRAINT contract_versions_action_check
    CHECK (action IN ('register', 'approve', 'revoke', 'expire')) NOT VALID;
ALTER TABLE contract_versions DROP COLUMN IF EXISTS credential;
ALTER TABLE contract_documents DROP COLUMN IF EXISTS registered_credential;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(TRIGGERS)


def downgrade() -> None:
    op.execute(DROP)
