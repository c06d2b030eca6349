"""Hostile review of separation of duties: spellings of one person and of one organisation.

Each test is an attempt by someone with a stake in a deal (the ML lead who wants LoveMatch's
photos approved) to pass as someone else, or to make a declared tie miss, by how a name is
written in the contract they register.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage.auth.principal import normalise_name, same_person
from lineage.contracts import governance, registry
from lineage.contracts.document import load_contract
from lineage.errors import BadRequest, ContractError, Forbidden, SelfApprovalRefused
from tests_support import principal

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ADMIN = principal("it-admin@example.com", "admin", credential="token:admin")
REQUESTER = principal("data-requests@example.com", "requester", credential="token:requests")
ML_LEAD = principal("ml-lead@example.com", "steward", credential="oidc:https://idp.example.com#ml-lead")
DPO = principal("dpo@example.com", "steward", credential="token:dpo")

# Characters that render as nothing (default-ignorable code points that are letters, marks or
# symbols, so a check on control/format categories alone lets them through) and punctuation
# that renders like ASCII punctuation.
INVISIBLE = ["\u034f", "\u3164", "\uffa0", "\u115f", "\u17b4", "\u180b", "\ufe0f", "\u2800"]
LOOK_ALIKE_PUNCTUATION = ["ml\u2010lead@example.com", "ml\u2013lead@example.com", "ml\u2212lead@example.com", "ml-lead\uff20example.com\u2024"]


@pytest.mark.parametrize("ch", INVISIBLE)
def test_invisible_letters_and_marks_are_refused_in_names(ch):
    with pytest.raises(BadRequest):
        normalise_name("ml-lead@example.com" + ch)
    with pytest.raises(BadRequest):
        normalise_name("ml-" + ch + "lead@example.com")


@pytest.mark.parametrize("name", LOOK_ALIKE_PUNCTUATION[:3])
def test_non_ascii_punctuation_is_refused_in_names(name):
    with pytest.raises(BadRequest):
        normalise_name(name)


def test_plain_international_names_still_work():
    assert normalise_name("José.Müller@Example.com") == "josé.müller@example.com"
    assert normalise_name("Ｍａｒｉａ@example.com") == "maria@example.com"  # full-width folds
    assert normalise_name("Дмитрий") == "дмитрий"


@pytest.mark.parametrize("variant", ["ml-lead+lovematch@example.com", "ml-lead@example.com.", "ML-Lead+x@Example.COM.", "ml-léad@example.com"])
def test_addressing_variants_of_one_mailbox_are_the_same_person(variant):
    assert same_person("ml-lead@example.com", normalise_name(variant))
    assert not same_person("ml-lead@example.com", "ml-leader@example.com")
    assert not same_person("ml-lead@example.com", "lead@example.com")


def _acme_with(tmp_path, **replace) -> object:
    text = (CONTRACTS / "acme-stock-photos.yaml").read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    return load_contract(path)


@pytest.mark.parametrize("ch", ["\u3164", "\u034f", "\u2800"])
def test_regression_a_requester_with_an_invisible_suffix_cannot_be_registered(tmp_path, ch):
    """The zero-width bypass of issue 8, with invisible characters that are not format characters."""
    with pytest.raises(ContractError, match="requester"):
        _acme_with(tmp_path, **{"value: ml-lead@example.com": f"value: ml-lead@example.com{ch}"})


@pytest.mark.parametrize("spelling", ["ml-lead+lovematch@example.com", "ml-lead@example.com.", "ml-léad@example.com"])
def test_regression_self_approval_under_another_spelling_of_the_requester(db, tmp_path, spelling):
    doc = _acme_with(tmp_path, **{"value: ml-lead@example.com": f"value: {spelling}"})
    with db.connection() as conn:
        registry.register(conn, doc, REQUESTER)
        with pytest.raises(SelfApprovalRefused, match="requester"):
            registry.approve(conn, doc.id, ML_LEAD)
        assert registry.current(conn, doc.id).status == "proposed"


def test_regression_a_second_approval_by_another_spelling_of_the_first_steward(db):
    love = load_contract(CONTRACTS / "lovematch-photos.yaml")
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        assert registry.approve(conn, love.id, DPO).action == "endorse"
        alias = principal("dpo+second@example.com", "steward", credential="token:dpo-alias")
        with pytest.raises(Exception, match="already approved"):
            registry.approve(conn, love.id, alias)
        assert registry.current(conn, love.id).status == "proposed"


@pytest.mark.parametrize("tie_org, contract_org", [
    ("LoveMatch", "LoveMatch Inc."),
    ("LoveMatch Inc.", "LoveMatch"),
    ("LoveMatch Inc.", "Love Match, Inc."),
    ("LoveMatch Inc.", "LoveMatch-Inc"),
    ("LoveMatch", "LoveMatch™ Ltd"),
    ("LoveMatch", "\"LoveMatch\" Holdings (US)"),
    ("lovematch", "ＬｏｖｅＭａｔｃｈ ＧｍｂＨ"),
    ("The LoveMatch Company", "LoveMatch"),
])
def test_regression_a_declared_tie_is_not_evaded_by_spelling_the_provider_differently(db, tmp_path, tie_org, contract_org):
    text = (CONTRACTS / "lovematch-photos.yaml").read_text()
    assert "value: LoveMatch Inc." in text
    path = tmp_path / "love.yaml"
    path.write_text(text.replace("value: LoveMatch Inc.", f"value: '{contract_org}'"), encoding="utf-8")
    doc = load_contract(path)
    with db.connection() as conn:
        registry.register(conn, doc, REQUESTER)
        governance.add_tie(conn, ADMIN, DPO.name, tie_org, "investment")
        with pytest.raises(SelfApprovalRefused, match="investment tie"):
            registry.approve(conn, doc.id, DPO)


@pytest.mark.parametrize("tie_org", ["Match Group", "Love", "Acme Stock Photos"])
def test_a_tie_to_another_organisation_does_not_block(db, tie_org):
    love = load_contract(CONTRACTS / "lovematch-photos.yaml")
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        governance.add_tie(conn, ADMIN, DPO.name, tie_org, "investment")
        assert registry.approve(conn, love.id, DPO).action == "endorse"


def test_regression_an_admin_cannot_lift_their_own_conflict(db):
    """An admin who is also a steward revoked the tie recorded against them, then approved."""
    admin_steward = principal("it-admin@example.com", "admin", "steward", credential="token:admin")
    love = load_contract(CONTRACTS / "lovematch-photos.yaml")
    with db.connection() as conn:
        registry.register(conn, love, REQUESTER)
        tie = governance.add_tie(conn, ADMIN, "IT-Admin+x@example.com", "LoveMatch", "investment")
        owner = governance.add_owner(conn, ADMIN, "ml-pipeline", "it-admin@example.com")
        with pytest.raises(Forbidden, match="someone else"):
            governance.revoke_tie(conn, admin_steward, tie.id, "no longer relevant")
        with pytest.raises(Forbidden, match="someone else"):
            governance.revoke_owner(conn, admin_steward, owner.id, "no longer relevant")
        with pytest.raises(SelfApprovalRefused):
            registry.approve(conn, love.id, admin_steward)
        assert governance.revoke_tie(conn, principal("other-admin@example.com", "admin"), tie.id, "sold the shares").revoked_at


def test_regression_an_admin_cannot_grant_themselves_a_role(db):
    from lineage.auth import grants

    with db.connection() as conn:
        with pytest.raises(Forbidden, match="someone else"):
            grants.grant(conn, "IT-Admin+steward@example.com", "steward", ADMIN.name)
        grants.grant(conn, "dpo@example.com", "steward", ADMIN.name)
