"""Governance in the real store: four eyes, declared ties, owners from the registry, and the
bypasses of issue 8 as regression tests (registry and HTTP API).

The API tests authenticate with ``tests_support.real_tokens`` (a dependency override with this
module's own tokens), so they exercise the routes' use of the principal, not a token format.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from lineage.auth.principal import normalise_name
from lineage.contracts import governance, registry
from lineage.contracts.document import load_contract
from lineage.errors import BadRequest, Conflict, Forbidden, SelfApprovalRefused
from tests_support import real_tokens, principal

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
LOVE_INPUT = "dataset:partner-drops:lovematch/photos"
SERVICE = "essential.service"  # the purpose lovematch-photos permits: only approval is in question

ADMIN = principal("it-admin@example.com", "admin", credential="token:admin")
REQUESTER = principal("data-requests@example.com", "requester", credential="token:requests")
DPO = principal("dpo@example.com", "steward", credential="oidc:https://idp.example.com#dpo")
COUNSEL = principal("privacy-counsel@example.com", "steward", credential="oidc:https://idp.example.com#counsel")
OFFICER = principal("compliance@example.com", "steward", credential="token:compliance")


@pytest.fixture
def love():
    return load_contract(CONTRACTS / "lovematch-photos.yaml")


@pytest.fixture
def acme():
    return load_contract(CONTRACTS / "acme-stock-photos.yaml")


@pytest.fixture
def known(db):
    """The demo pipeline's lineage, so the partner drops are known origins for the gate."""
    from lineage.events import parse_event
    from example_pipeline.sample import ml_pipeline_sample
    from lineage.store.ingest import ingest_events

    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])
    return db


def _gate(db, purpose: str = SERVICE):
    from lineage.gate.service import check_gate

    return check_gate(db, "ml:train", purpose, [LOVE_INPUT])


def _history(db, cid: str) -> list[tuple[str, str, str]]:
    with db.connection() as conn:
        return [(h.action, h.status, h.actor) for h in registry.get(conn, cid).history]


# -- four eyes -----------------------------------------------------------------------------------


def test_special_categories_stay_proposed_after_one_steward_and_the_gate_keeps_blocking(known, love):
    db = known
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        s = registry.approve(conn, love.id, DPO, "consent evidence reviewed")
    assert (s.status, s.action, s.actor, s.credential) == ("proposed", "endorse", DPO.name, DPO.credential)
    d = _gate(db)
    assert not d.allowed and [r.code for r in d.reasons] == ["not_approved"]
    assert "one more independent steward must approve it" in d.reasons[0].message and DPO.name in d.reasons[0].message

    with db.connection() as conn:
        s = registry.approve(conn, love.id, COUNSEL)
    assert (s.status, s.action, s.actor) == ("approved", "approve", COUNSEL.name)
    assert _gate(db).allowed
    assert _history(db, love.id) == [
        ("register", "proposed", REQUESTER.name), ("endorse", "proposed", DPO.name), ("approve", "approved", COUNSEL.name),
    ]


def test_the_same_steward_twice_does_not_count_twice(known, love):
    db = known
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        registry.approve(conn, love.id, DPO)
    # Again, and again under another credential and another spelling of the same name.
    for again in (DPO, principal("DPO@Example.COM", "steward", credential="token:dpo-laptop"), principal("ｄｐｏ@example.com", "steward")):
        with pytest.raises(Conflict, match="already approved .* different independent steward"), db.connection() as conn:
            registry.approve(conn, love.id, again)
    assert _history(db, love.id)[-1] == ("endorse", "proposed", DPO.name)
    assert not _gate(db).allowed


def test_a_contract_without_special_categories_needs_one_steward(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)
        assert registry.approve(conn, acme.id, DPO).status == "approved"


def test_the_organisation_can_add_special_categories(db, acme):
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)  # holds user.content.self_image
        s = registry.approve(conn, acme.id, DPO, special_categories=["user.content"])
        assert (s.status, s.action) == ("proposed", "endorse")
        assert registry.approve(conn, acme.id, COUNSEL, special_categories=["user.content"]).status == "approved"


def test_special_categories_follow_the_hierarchy(love):
    from dataclasses import replace

    assert registry.special_categories_of(love.terms) == ("user.demographic.race_ethnicity", "user.location.precise")
    assert registry.special_categories_of(replace(love.terms, data_categories=("user.biometric.voice",))) == ("user.biometric.voice",)
    # A parent key may hold a special sub-category: it counts too.
    assert registry.special_categories_of(replace(love.terms, data_categories=("user.demographic",))) == ("user.demographic",)
    assert registry.special_categories_of(replace(love.terms, data_categories=("user.demographic.gender", "user.content"))) == ()


def test_a_first_approval_stops_counting_once_its_steward_is_tied(known, love):
    db = known
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        registry.approve(conn, love.id, DPO)
        governance.add_tie(conn, ADMIN, DPO.name, "LoveMatch Inc.", "investment")
        s = registry.approve(conn, love.id, COUNSEL)
        assert (s.status, s.action) == ("proposed", "endorse")  # COUNSEL's is now the only independent approval
        assert registry.approve(conn, love.id, OFFICER).status == "approved"


def test_four_eyes_is_per_revision(db, love, tmp_path):
    revised = tmp_path / "love.yaml"
    revised.write_text((CONTRACTS / "lovematch-photos.yaml").read_text().replace("value: LoveMatch Inc.", "value: LoveMatch Incorporated"))
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        registry.approve(conn, love.id, DPO)
        registry.register(conn, load_contract(revised), REQUESTER)  # a new revision: DPO's approval was of the old one
        s = registry.approve(conn, love.id, COUNSEL)
        assert (s.revision, s.status, s.action) == (2, "proposed", "endorse")


# -- declared interests --------------------------------------------------------------------------


def test_a_steward_with_a_declared_investment_tie_to_the_provider_is_refused(known, love):
    db = known
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        governance.add_tie(conn, ADMIN, "DPO@example.com", "LoveMatch, Inc", "investment", "holds shares via a fund")
        with pytest.raises(SelfApprovalRefused) as info:
            registry.approve(conn, love.id, DPO)
    message = str(info.value)
    assert info.value.status == 403
    assert "`dpo@example.com` has a declared investment tie to `LoveMatch Inc.`, the contract's provider" in message
    assert _history(db, love.id) == [("register", "proposed", REQUESTER.name)]


def test_a_revoked_tie_no_longer_blocks(db, love):
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        tie = governance.add_tie(conn, ADMIN, DPO.name, "LoveMatch Inc.", "family")
        with pytest.raises(SelfApprovalRefused, match="family tie"):
            registry.approve(conn, love.id, DPO)
        revoked = governance.revoke_tie(conn, ADMIN, tie.id, "sister left LoveMatch in 2026")
        assert revoked.revoked_reason == "sister left LoveMatch in 2026" and revoked.revoked_by == ADMIN.name
        with pytest.raises(Conflict, match="already revoked"):
            governance.revoke_tie(conn, ADMIN, tie.id, "again")
        assert registry.approve(conn, love.id, DPO).action == "endorse"
        assert [t.id for t in governance.list_ties(conn, DPO.name, include_revoked=True)] == [tie.id]
        assert governance.list_ties(conn, DPO.name) == []


def test_a_tie_to_the_requester_organisation_is_refused(db, tmp_path):
    text = (CONTRACTS / "acme-stock-photos.yaml").read_text()
    assert "  - property: requesterOrganization\n    value: Example AI Corp.\n" in text
    doc = load_contract(CONTRACTS / "acme-stock-photos.yaml")
    with db.connection() as conn:
        registry.register(conn, doc, REQUESTER)
        governance.add_tie(conn, ADMIN, DPO.name, "example ai corp", "employment")
        governance.add_tie(conn, ADMIN, COUNSEL.name, "Someone Else Ltd", "investment")  # ties elsewhere do not matter
        with pytest.raises(SelfApprovalRefused, match="employment tie to `Example AI Corp.`, the contract's requester organisation"):
            registry.approve(conn, doc.id, DPO)
        assert registry.approve(conn, doc.id, COUNSEL).status == "approved"


def test_only_an_admin_records_ties_and_owners_and_bad_input_names_the_field(db):
    with db.connection() as conn:
        with pytest.raises(Forbidden, match="admin"):
            governance.add_tie(conn, DPO, DPO.name, "LoveMatch Inc.", "investment")  # a steward clearing themselves
        with pytest.raises(Forbidden, match="admin"):
            governance.add_owner(conn, principal("ml-lead@example.com", "requester", "emitter"), "ml", "ml-lead@example.com")
        for args, field in (
            ((DPO.name, "LoveMatch Inc.", "friendship"), "kind"),
            (("dpo@example.com\u200b", "LoveMatch Inc.", "investment"), "principal"),
            ((DPO.name, "Lоve Match", "investment"), "organisation"),  # Cyrillic о
            ((DPO.name, " ... ", "investment"), "organisation"),
            ((DPO.name, "x" * 600, "investment"), "organisation"),
        ):
            with pytest.raises(BadRequest) as info:
                governance.add_tie(conn, ADMIN, *args)
            assert info.value.field == field, args
        with pytest.raises(BadRequest, match="owner"):
            governance.add_owner(conn, ADMIN, "ml", "ml-lead@example.com\u2060")
        first = governance.add_owner(conn, ADMIN, "ml", "ML-Lead@example.com")
        assert governance.add_owner(conn, ADMIN, "ml", "ml-lead@example.com").id == first.id  # no duplicate entry
        assert (first.owner, first.recorded_by, first.credential) == ("ml-lead@example.com", ADMIN.name, ADMIN.credential)


def test_the_governance_registries_are_append_only(db):
    with db.connection() as conn:
        tie = governance.add_tie(conn, ADMIN, DPO.name, "LoveMatch Inc.", "investment")
        owner = governance.add_owner(conn, ADMIN, "ml", "ml-lead@example.com")
        governance.revoke_tie(conn, ADMIN, tie.id, "ended")
        governance.revoke_owner(conn, ADMIN, owner.id, "left")
    for sql in (
        "DELETE FROM principal_ties", "UPDATE principal_ties SET organisation = 'x'", "DELETE FROM principal_tie_revocations",
        "DELETE FROM namespace_owners", "DELETE FROM namespace_owner_revocations", "TRUNCATE principal_ties CASCADE",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.connection() as conn:
            conn.execute(sql)


# -- the bypasses of issue 8 ---------------------------------------------------------------------


def test_regression_zero_width_and_look_alike_self_approval(db, acme):
    """Self-approval was refused for `ml-lead@example.com` but accepted for `ml-lead@example.com\\u200b`."""
    for forged in ("ml-lead@example.com\u200b", "ml-lead@example.com\u2060", "ml-lеad@example.com"):  # ZWSP, word joiner, Cyrillic е
        with pytest.raises(BadRequest):
            normalise_name(forged)
    with db.connection() as conn:
        registry.register(conn, acme, REQUESTER)  # the requester named in the terms is ml-lead@example.com
        for forged in ("ml-lead@example.com\u200b", "ml-lеad@example.com"):
            # An authenticator that let such a name through is refused by the registry as well.
            from lineage.auth.principal import Principal

            with pytest.raises(BadRequest):
                registry.approve(conn, acme.id, Principal(forged, "token:forged", frozenset({"steward"})))
        for variant in ("ML-LEAD@example.com", "ｍｌ-lead@example.com", " ml-lead@example.com "):
            with pytest.raises(SelfApprovalRefused, match="requester"):
                registry.approve(conn, acme.id, principal(variant, "steward"))
        assert registry.current(conn, acme.id).status == "proposed"


def test_regression_a_contract_cannot_name_a_requester_no_principal_can_match(tmp_path):
    from lineage.errors import ContractError

    for forged in ("ml-lead@example.com\u200b", "ml-lеad@example.com"):
        path = tmp_path / "acme.yaml"
        path.write_text((CONTRACTS / "acme-stock-photos.yaml").read_text().replace("value: ml-lead@example.com", f"value: {forged}"), encoding="utf-8")
        with pytest.raises(ContractError, match="requester"):
            load_contract(path)


def test_regression_an_ownership_facet_naming_the_steward_does_not_block_them(known, love):
    """A posted `ownership` facet naming the real data-protection officer made their approval a 403."""
    from lineage.events import parse_event
    from lineage.samples import dataset, run_event
    from lineage.store.ingest import ingest_events
    from datetime import datetime, timezone

    db = known
    forged = run_event("COMPLETE", ("attacker", "consume"), "0195e0c4-0000-7000-8000-0000000000aa",
                       [dataset("partner-drops", "lovematch/photos")], [dataset("scratch", "copy")], datetime(2026, 11, 1, tzinfo=timezone.utc))
    forged["job"]["facets"]["ownership"] = {
        "_producer": "https://example.com", "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
        "owners": [{"name": "user:dpo@example.com", "type": "MAINTAINER"}, {"name": "privacy-counsel@example.com"}],
    }
    with db.connection() as conn:
        ingest_events(conn, [parse_event(forged)])
        registry.register(conn, love, REQUESTER)
        assert registry.approve(conn, love.id, DPO).action == "endorse"
        assert registry.approve(conn, love.id, COUNSEL).status == "approved"


def test_a_registered_namespace_owner_is_refused(known, love):
    db = known
    with db.connection() as conn:
        governance.add_owner(conn, ADMIN, "ml-pipeline", "DPO@example.com")  # ml-pipeline's jobs consume lovematch's drop
        registry.register(conn, love, REQUESTER)
        with pytest.raises(SelfApprovalRefused, match="registered owner of job `ml-pipeline:"):
            registry.approve(conn, love.id, DPO)


# -- over HTTP -----------------------------------------------------------------------------------

TOKENS = {
    "t-admin": ADMIN,
    "t-auditor": principal("auditor@example.com", "auditor"),
    "t-requester": REQUESTER,
    "t-dpo": DPO,
    "t-counsel": COUNSEL,
    "t-ml-lead": principal("ml-lead@example.com", "steward", "requester", credential="token:ml-lead"),
    "t-viewer": principal("viewer@example.com", "viewer"),
}


def _h(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def api(app, client):
    real_tokens(app, TOKENS)
    return client


def test_regression_a_forged_as_is_refused_and_the_actor_is_the_token(api, known):
    love_text = (CONTRACTS / "lovematch-photos.yaml").read_text()
    r = api.post("/api/v1/contracts?as=dpo@example.com", content=love_text, headers=_h("t-requester"))
    assert r.status_code == 400 and "`as` is not accepted" in r.json()["message"]
    r = api.post("/api/v1/contracts", content=love_text, headers=_h("t-requester"))
    assert r.status_code == 201 and (r.json()["registeredBy"], r.json()["registeredWith"]) == (REQUESTER.name, REQUESTER.credential)
    # ml-lead holds the steward role but claims to be the DPO in the body, then in the query.
    r = api.post("/api/v1/contracts/lovematch-photos/approve", json={"as": "dpo@example.com"}, headers=_h("t-ml-lead"))
    assert r.status_code == 400 and "`as` is not accepted" in r.json()["message"]
    r = api.post("/api/v1/contracts/lovematch-photos/approve?as=dpo@example.com", json={}, headers=_h("t-ml-lead"))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "query.as"
    r = api.post("/api/v1/contracts/lovematch-photos/revoke", json={"as": "dpo@example.com", "reason": "x"}, headers=_h("t-dpo"))
    assert r.status_code == 400
    assert [h["action"] for h in api.get("/api/v1/contracts/lovematch-photos").json()["history"]] == ["register"]


def test_four_eyes_and_ties_over_http(api, known):
    love_text = (CONTRACTS / "lovematch-photos.yaml").read_text()
    assert api.post("/api/v1/contracts", content=love_text, headers=_h("t-requester")).status_code == 201
    r = api.post("/api/v1/governance/ties", json={"principal": "dpo@example.com", "organisation": "LoveMatch Inc.", "kind": "investment"},
                 headers=_h("t-admin"))
    assert r.status_code == 201, r.text
    tie = r.json()
    assert (tie["principal"], tie["kind"], tie["recordedBy"], tie["credential"]) == (DPO.name, "investment", ADMIN.name, ADMIN.credential)
    r = api.post("/api/v1/contracts/lovematch-photos/approve", headers=_h("t-dpo"))
    assert r.status_code == 403 and "declared investment tie to `LoveMatch Inc.`, the contract's provider" in r.json()["message"]
    r = api.post(f"/api/v1/governance/ties/{tie['id']}/revoke", json={"reason": "shares sold"}, headers=_h("t-admin"))
    assert r.status_code == 200 and r.json()["revoked"]["reason"] == "shares sold"
    r = api.post("/api/v1/contracts/lovematch-photos/approve", json={"reason": "consent reviewed"}, headers=_h("t-dpo"))
    assert r.status_code == 200 and (r.json()["status"], r.json()["action"]) == ("proposed", "endorse")
    check = {"job": "ml:serve", "purpose": SERVICE, "inputs": [LOVE_INPUT]}
    r = api.post("/api/v1/gate/check", json=check)
    assert r.json()["allowed"] is False and "one more independent steward" in r.json()["reasons"][0]["message"]
    assert api.post("/api/v1/contracts/lovematch-photos/approve", headers=_h("t-dpo")).status_code == 409
    r = api.post("/api/v1/contracts/lovematch-photos/approve", headers=_h("t-counsel"))
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["changedWith"] == "token:t-counsel"  # the token the HTTP call used
    assert api.post("/api/v1/gate/check", json=check).json()["allowed"] is True


def test_governance_routes_need_admin_and_refuse_bad_input(api, anon_client):
    body = {"principal": "dpo@example.com", "organisation": "LoveMatch Inc.", "kind": "investment"}
    assert anon_client.post("/api/v1/governance/ties", json=body).status_code == 401
    assert api.post("/api/v1/governance/ties", json=body, headers=_h("t-dpo")).status_code == 403
    assert api.get("/api/v1/governance/ties", headers=_h("t-viewer")).status_code == 403
    assert api.post("/api/v1/governance/owners", json={"namespace": "ml", "owner": "a@example.com"}, headers=_h("t-requester")).status_code == 403
    for bad, field in (
        ({**body, "kind": "friendship"}, "kind"),
        ({**body, "principal": "dpo@example.com\u200b"}, "principal"),
        ({**body, "organisation": "Love\u0000Match"}, "body.organisation"),
        ({**body, "as": "root"}, "body.as"),
    ):
        r = api.post("/api/v1/governance/ties", json=bad, headers=_h("t-admin"))
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, (bad, r.text)
    assert api.post("/api/v1/governance/ties/99999999999999999999/revoke", json={"reason": "x"}, headers=_h("t-admin")).status_code == 400
    assert api.post("/api/v1/governance/ties/42/revoke", json={"reason": "x"}, headers=_h("t-admin")).status_code == 404
    r = api.post("/api/v1/governance/owners", json={"namespace": "ml", "owner": "ML-Lead@example.com"}, headers=_h("t-admin"))
    assert r.status_code == 201 and r.json()["owner"] == "ml-lead@example.com"
    listed = api.get("/api/v1/governance/owners", params={"namespace": "ml"}, headers=_h("t-auditor")).json()
    assert [o["owner"] for o in listed["owners"]] == ["ml-lead@example.com"]
    r = api.post(f"/api/v1/governance/owners/{r.json()['id']}/revoke", json={"reason": "left"}, headers=_h("t-admin"))
    assert r.status_code == 200 and api.get("/api/v1/governance/owners", headers=_h("t-admin")).json()["totalCount"] == 0
    assert api.get("/api/v1/governance/owners?includeRevoked=true", headers=_h("t-admin")).json()["totalCount"] == 1
