"""The registry in the real store: versions, separation of duties, append-only history."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import psycopg
import pytest

from lineage.contracts import registry
from lineage.contracts.document import load_contract
from lineage.errors import BadRequest, Conflict, Forbidden, NotFound, SelfApprovalRefused
from tests_support import principal

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
STEWARD = principal("dpo@example.com", "steward")
REQUESTER = principal("ml-lead@example.com", "requester", credential="token:ml-lead-laptop")


@pytest.fixture
def acme():
    return load_contract(CONTRACTS / "acme-stock-photos.yaml")


def test_register_approve_revoke_keeps_every_version(db, acme):
    with db.connection() as conn:
        s = registry.register(conn, acme, REQUESTER)
        assert (s.ref, s.status, s.actor, s.credential) == ("acme-stock-photos@1", "proposed", "ml-lead@example.com", "token:ml-lead-laptop")
        assert registry.register(conn, acme, REQUESTER).version == 1  # the same document again changes nothing
        assert registry.approve(conn, acme.id, STEWARD, "licence checked").status == "approved"
        with pytest.raises(Conflict):
            registry.approve(conn, acme.id, principal("other@example.com", "steward"))
        with pytest.raises(BadRequest, match="reason"):
            registry.revoke(conn, acme.id, STEWARD, " ")
        s = registry.revoke(conn, acme.id, STEWARD, "licence withdrawn by ACME")
        assert (s.ref, s.status, s.reason) == ("acme-stock-photos@3", "revoked", "licence withdrawn by ACME")
        with pytest.raises(Conflict, match="register a new revision"):
            registry.approve(conn, acme.id, STEWARD)
        s = registry.register(conn, acme, REQUESTER)  # re-registering after a revocation starts over
        assert (s.version, s.revision, s.status) == (4, 2, "proposed")
        full = registry.get(conn, acme.id)
    # Every version records the principal's name, the credential that authenticated it, and the time.
    assert [(h.action, h.status, h.actor, h.credential) for h in full.history] == [
        ("register", "proposed", "ml-lead@example.com", "token:ml-lead-laptop"),
        ("approve", "approved", STEWARD.name, STEWARD.credential),
        ("revoke", "revoked", STEWARD.name, STEWARD.credential),
        ("register", "proposed", "ml-lead@example.com", "token:ml-lead-laptop"),
    ]
    assert all(h.recorded_at.tzinfo is not None for h in full.history)
    assert full.document["id"] == "acme-stock-photos"


def test_history_is_append_only(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)
    for sql in ("UPDATE contract_versions SET status = 'approved'", "DELETE FROM contract_documents", "TRUNCATE contract_versions CASCADE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.connection() as conn:
            conn.execute(sql)


def test_self_approval_by_the_requester_is_refused(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, principal("data-requests@example.com", "requester"))
        with pytest.raises(SelfApprovalRefused) as info:
            registry.approve(conn, acme.id, principal("ML-Lead@example.com", "steward"))
    assert info.value.status == 403 and "requester" in str(info.value) and "independent steward" in str(info.value)
    with db.connection() as conn:
        assert registry.current(conn, acme.id).status == "proposed"


def test_approval_by_whoever_registered_it_is_refused(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, principal("partnerships@example.com", "requester", "steward"))
        with pytest.raises(SelfApprovalRefused, match="registered"):
            registry.approve(conn, acme.id, principal("Partnerships@Example.com", "steward", credential="oidc:other-device"))


def _consumers(conn, owner_facet: str | None = None) -> None:
    """Lineage: acme/photos -> ml:curate -> curated/faces -> ml:train; ml:train's events may carry an ownership facet."""
    from lineage.events import parse_event
    from lineage.samples import dataset, run_event
    from lineage.store.ingest import ingest_events

    t = datetime(2026, 11, 1, tzinfo=timezone.utc)
    drop, curated, model = dataset("partner-drops", "acme/photos"), dataset("curated", "faces"), dataset("models", "face")
    curate = run_event("COMPLETE", ("ml", "curate"), "0195e0c4-0000-7000-8000-000000000001", [drop], [curated], t)
    train = run_event("COMPLETE", ("ml", "train"), "0195e0c4-0000-7000-8000-000000000002", [curated], [model], t)
    if owner_facet:
        train["job"]["facets"]["ownership"] = {
            "_producer": "https://example.com", "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
            "owners": [{"name": owner_facet, "type": "MAINTAINER"}],
        }
    ingest_events(conn, [parse_event(curate), parse_event(train)])


def test_approval_by_a_registered_owner_of_a_consuming_job_is_refused(db, acme):
    from lineage.contracts import governance

    admin = principal("it-admin@example.com", "admin")
    with db.connection() as conn:
        _consumers(conn)
        owner = governance.add_owner(conn, admin, "ml", "Trainer@Example.com")
        registry.register(conn, acme, REQUESTER)
        with pytest.raises(SelfApprovalRefused, match="registered owner of job `ml:curate`"):
            registry.approve(conn, acme.id, principal("trainer@example.com", "steward"))
        governance.revoke_owner(conn, admin, owner.id, "moved to another team")  # a revoked ownership no longer binds
        assert registry.approve(conn, acme.id, principal("trainer@example.com", "steward")).status == "approved"


def test_regression_a_posted_ownership_facet_naming_the_steward_does_not_block_them(db, acme):
    """Bypass: anyone who could post lineage named the data-protection officer as owner of a
    consuming job, and the officer's approval became a 403.  Owners come from the registry now."""
    with db.connection() as conn:
        _consumers(conn, owner_facet="user:dpo@example.com")
        registry.register(conn, acme, REQUESTER)
        assert registry.approve(conn, acme.id, STEWARD).status == "approved"


def test_unknown_contract_and_expiry(db, acme):
    with db.connection() as conn:
        with pytest.raises(NotFound):
            registry.approve(conn, "nope", STEWARD)
        registry.register(conn, acme, REQUESTER)
        with pytest.raises(Conflict, match="expired"):
            registry.approve(conn, acme.id, STEWARD, today=date(2028, 1, 1))
        registry.approve(conn, acme.id, STEWARD)
        assert registry.expire_due(conn, STEWARD, today=date(2027, 6, 1)) == []
        with pytest.raises(Forbidden, match="steward"):
            registry.expire_due(conn, REQUESTER, today=date(2028, 1, 1))
        assert registry.expire_due(conn, STEWARD, today=date(2028, 1, 1)) == [acme.id]
        s = registry.current(conn, acme.id)
        assert (s.status, s.actor, s.credential) == ("expired", STEWARD.name, STEWARD.credential)


def test_lookup_by_dataset(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)
        found = registry.contracts_for_datasets(conn, [("partner-drops", "acme/photos"), ("partner-drops", "unknown")])
    assert list(found) == [("partner-drops", "acme/photos")] and found[("partner-drops", "acme/photos")][0].id == acme.id


def test_lookup_returns_the_governing_version_of_each_contract(db, acme, tmp_path):
    """The gate obeys the latest approval of each contract unless a revocation or expiry came after it."""
    from lineage.contracts.document import load_contract

    key = ("partner-drops", "acme/photos")
    revised_file = tmp_path / "acme.yaml"
    revised_file.write_text((CONTRACTS / "acme-stock-photos.yaml").read_text().replace("usage: Face detection", "usage: Smile and face detection"))
    revised = load_contract(revised_file)

    def governing(conn):
        [s] = registry.contracts_for_datasets(conn, [key])[key]
        return s.ref, s.status, s.revision

    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)
        assert governing(conn) == ("acme-stock-photos@1", "proposed", 1)  # never approved: the current state governs
        registry.approve(conn, acme.id, STEWARD)
        registry.register(conn, revised, REQUESTER)  # v3: revision 2 proposed
        assert registry.current(conn, acme.id).status == "proposed"  # what a steward acts on...
        assert governing(conn) == ("acme-stock-photos@2", "approved", 1)  # ...is not what the gate obeys
        registry.approve(conn, acme.id, STEWARD)
        assert governing(conn) == ("acme-stock-photos@4", "approved", 2)
        registry.register(conn, acme, REQUESTER)  # v5: revision 3 (the first text again), proposed
        registry.revoke(conn, acme.id, STEWARD, "withdrawn")  # v6: a revocation after the approval revokes the contract
        assert governing(conn) == ("acme-stock-photos@6", "revoked", 3)
        assert registry.expire_due(conn, STEWARD, today=date(2028, 1, 1)) == []


def test_a_dataset_only_a_pending_revision_names_is_not_covered_by_it(db, acme, tmp_path):
    from lineage.contracts.document import load_contract

    moved = tmp_path / "acme.yaml"
    moved.write_text((CONTRACTS / "acme-stock-photos.yaml").read_text().replace("name: acme/photos", "name: acme/photos-2026"))
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)
        registry.approve(conn, acme.id, STEWARD)
        registry.register(conn, load_contract(moved), REQUESTER)
        found = registry.contracts_for_datasets(conn, [("partner-drops", "acme/photos"), ("partner-drops", "acme/photos-2026")])
    assert {k: [s.ref for s in v] for k, v in found.items()} == {("partner-drops", "acme/photos"): ["acme-stock-photos@2"]}


def test_lookup_matches_names_exactly(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)
        look_alikes = [("partner-drops", "acme/ph\u043etos"), ("partner-drops", "ACME/photos"), ("partner-drops ", "acme/photos")]
        assert registry.contracts_for_datasets(conn, look_alikes) == {}


def test_roles_are_checked_in_the_registry_too(db, acme):
    with db.connection() as conn:
        with pytest.raises(Forbidden, match="requester"):
            registry.register(conn, acme, principal("dpo@example.com", "steward"))
        registry.register(conn, acme, REQUESTER)
        with pytest.raises(Forbidden, match="steward"):
            registry.approve(conn, acme.id, principal("it-admin@example.com", "admin", "requester"))
        with pytest.raises(Forbidden, match="steward"):
            registry.revoke(conn, acme.id, principal("viewer@example.com", "viewer"), "no")
        with pytest.raises(TypeError):
            registry.approve(conn, acme.id, "dpo@example.com")  # a bare name is not an authenticated principal
        assert registry.current(conn, acme.id).status == "proposed"
