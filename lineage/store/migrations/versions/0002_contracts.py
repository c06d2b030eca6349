"""Source contracts and gate decisions.

Revision ID: 0002
Revises: 0001

Three append-only tables hold the contract registry:

* ``contract_documents``: every registered revision of an ODCS document, exactly as parsed,
  with the governance terms extracted from it;
* ``contract_dataset_links``: which OpenLineage datasets (namespace, name) a revision covers,
  indexed for the gate's lookup;
* ``contract_versions``: every change of state (register, approve, revoke, expire) with who,
  when and why.  The current state of a contract is its highest version.

``gate_decisions`` records every decision the gate took, allowed or blocked, with its reasons.
Nothing in these tables is ever updated or deleted (except inside an erasure, which sets
``lineage.erasure`` for its own transaction, as for ``raw_events``).
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE FUNCTION lineage_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('lineage.erasure', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TABLE contract_documents (
    contract_id   text        NOT NULL,
    revision      integer     NOT NULL CHECK (revision > 0),
    document      jsonb       NOT NULL,              -- the ODCS document as parsed
    terms         jsonb       NOT NULL,              -- governance terms extracted from it
    sha256        text        NOT NULL,
    source_file   text,
    registered_by text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contract_id, revision)
);

CREATE TABLE contract_dataset_links (
    contract_id text    NOT NULL,
    revision    integer NOT NULL,
    namespace   text    NOT NULL,
    name        text    NOT NULL,
    schema_name text,                                 -- the ODCS schema object for this dataset
    PRIMARY KEY (contract_id, revision, namespace, name),
    FOREIGN KEY (contract_id, revision) REFERENCES contract_documents (contract_id, revision)
);
CREATE INDEX contract_dataset_links_dataset ON contract_dataset_links (namespace, name);

CREATE TABLE contract_versions (
    contract_id text        NOT NULL,
    version     integer     NOT NULL CHECK (version > 0),
    revision    integer     NOT NULL,
    action      text        NOT NULL CHECK (action IN ('register', 'approve', 'revoke', 'expire')),
    status      text        NOT NULL CHECK (status IN ('proposed', 'approved', 'revoked', 'expired')),
    actor       text        NOT NULL,
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contract_id, version),
    FOREIGN KEY (contract_id, revision) REFERENCES contract_documents (contract_id, revision)
);

CREATE TABLE gate_decisions (
    id            bigserial   PRIMARY KEY,
    decision_id   uuid        NOT NULL UNIQUE,
    job_namespace text        NOT NULL,
    job_name      text        NOT NULL,
    purpose       text        NOT NULL,
    allowed       boolean     NOT NULL,
    inputs        jsonb       NOT NULL,
    reasons       jsonb       NOT NULL,
    contracts     jsonb       NOT NULL,              -- contract id -> version consulted
    validations   jsonb       NOT NULL,
    facets        jsonb       NOT NULL,              -- OpenLineage input facets, per dataset
    decided_at    timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gate_decisions_job ON gate_decisions (job_namespace, job_name, decided_at DESC);
"""

TRIGGERS = "\n".join(
    f"""
CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t}
    FOR EACH ROW EXECUTE FUNCTION lineage_append_only();
CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION lineage_append_only();
"""
    for t in ("contract_documents", "contract_dataset_links", "contract_versions", "gate_decisions")
)

DROP = """
DROP TABLE IF EXISTS gate_decisions, contract_versions, contract_dataset_links, contract_documents CASCADE;
DROP FUNCTION IF EXISTS lineage_append_only() CASCADE;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(TRIGGERS)


def downgrade() -> None:
    op.execute(DROP)
