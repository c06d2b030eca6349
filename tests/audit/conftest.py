"""A store with rows in every ledgered table, sealed; the owner's connection for attacks."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import psycopg
import pytest

from lineage.audit.seal import seal_all
from lineage.auth import grants, tokens as api_tokens
from lineage.contracts import governance, registry
from lineage.contracts.document import load_contract
from lineage.events import parse_event
from example_pipeline.sample import ml_pipeline_sample
from lineage.store import decisions
from lineage.store.ingest import ingest_events
from tests_support import principal

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


@pytest.fixture
def filled(db, role_urls):
    """Rows in every ledgered table (a revoked token and one erasure included), all sealed."""
    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])
        registry.register(conn, load_contract(CONTRACTS / "acme-stock-photos.yaml"), principal("data-requests@example.com", "requester"))
        admin = principal("it-admin@example.com", "admin")
        owner = governance.add_owner(conn, admin, "ml-pipeline", "ml-lead@example.com")
        governance.revoke_owner(conn, admin, owner.id, "moved team")
        tie = governance.add_tie(conn, admin, "dpo@example.com", "LoveMatch Inc.", "investment")
        governance.revoke_tie(conn, admin, tie.id, "shares sold")
        governance.add_owner(conn, admin, "ml-pipeline", "second@example.com")  # unrevoked: a forged revocation's target
        governance.add_tie(conn, admin, "cfo@example.com", "PhotoCo", "employment")
        grants.grant(conn, "dpo@example.com", "steward", actor="it-admin@example.com", reason="appointed")
        api_tokens.create(conn, name="kept", principal="svc@example.com", roles=("viewer",), namespaces=None,
                          expires_at=None, created_by="tests")
        api_tokens.create(conn, name="revoked-later", principal="old@example.com", roles=("emitter",), namespaces=None,
                          expires_at=None, created_by="tests")
        # Tags and a soft deletion (migration 0009).
        conn.execute("INSERT INTO tag_definitions (name, description, recorded_by) VALUES ('PII', 'personal data', 'dpo@example.com')")
        conn.execute("INSERT INTO tag_changes (target, namespace, name, tag, action, recorded_by) "
                     "VALUES ('dataset', 'drops', 'photos', 'PII', 'add', 'dpo@example.com')")
        conn.execute("INSERT INTO node_deletions (kind, namespace, name, recorded_by) VALUES ('job', 'ns', 'old', 'dpo@example.com')")
        # An erasure manifest with one item and its deletion (the tables of migration 0011).
        m = conn.execute("INSERT INTO erasure_manifests (source_namespace, source_name, norm_namespace, norm_name, reason, "
                         "requested_by, credential, manifest, summary) VALUES ('drops', 'photos', 'drops', 'photos', "
                         "'consent withdrawn', 'dpo@example.com', 'token:t1', '{}', 'photos and one model') RETURNING id").fetchone()[0]
        item = conn.execute("INSERT INTO erasure_items (manifest_id, kind, namespace, name, norm_namespace, norm_name, location) "
                            "VALUES (%s, 'source', 'drops', 'photos', 'drops', 'photos', 'file:///data/photos') RETURNING id",
                            (m,)).fetchone()[0]
        conn.execute("INSERT INTO erasure_item_events (item_id, action, recorded_by, credential) "
                     "VALUES (%s, 'deleted', 'airflow', 'token:t2')", (item,))
        # ...and rows nothing references, for the tests that delete one.
        conn.execute("INSERT INTO erasure_items (manifest_id, kind, namespace, name, norm_namespace, norm_name) "
                     "VALUES (%s, 'model', 'models', 'face', 'models', 'face')", (m,))
        conn.execute("INSERT INTO erasure_manifests (source_namespace, source_name, norm_namespace, norm_name, reason, "
                     "requested_by, credential, manifest, summary) VALUES ('drops', 'clips', 'drops', 'clips', "
                     "'consent withdrawn', 'dpo@example.com', 'token:t1', '{}', 'clips, nothing built from them')")
        decisions.insert(conn, {
            "decision_id": str(uuid.uuid4()), "job_namespace": "ns", "job_name": "train", "purpose": "train_ai_system",
            "allowed": False, "inputs": {}, "reasons": [], "contracts": {}, "validations": [], "facets": {},
            "decided_at": dt.datetime.now(dt.timezone.utc),
        })
    # A retention record (migration 0014; the owner's alone): of a partition that held nothing.
    with psycopg.connect(role_urls["owner"], autocommit=True) as owner:
        owner.execute("INSERT INTO retentions (tbl, partition_name, range_to, ids, row_count, archive, archive_sha256)"
                      " VALUES ('raw_events', 'raw_events_1999_01', '1999-02-01', '{}', 0, 'raw_events/raw_events_1999_01.jsonl.gz',"
                      " repeat('a', 64))")
    with db.connection() as conn:
        seal_all(conn)
    with db.connection() as conn:  # an update of a sealed record (tokens are revocable) and an erasure
        api_tokens.revoke(conn, "revoked-later", by="it-admin@example.com")
        first = conn.execute("SELECT min(id) FROM raw_events").fetchone()[0]
        conn.execute("SELECT lineage_erase(ARRAY[%s::bigint], 'dpo@example.com', 'subject request 1')", (first,))
    with db.connection() as conn:
        seal_all(conn)
    return db


@pytest.fixture
def owner(role_urls):
    """The database owner's connection, in autocommit: the attacker of these tests."""
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        yield conn
