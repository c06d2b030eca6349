"""The pure decision: the rules of ``lineage.gate.decision`` in order, and every reason naming the
input, the dataset where it was found, the contract and the clause."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from gate_helpers import CONTRACTS

from lineage.contracts.document import load_contract
from lineage.contracts.registry import ContractState
from lineage.contracts.terms import Permission
from lineage.gate.decision import Validation, evaluate
from lineage.gate.provenance import Upstream

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
SRC = "dataset:partner-drops:acme/photos"
INP = "dataset:curated:training.face_photos_v1"


def state(name: str, status: str = "approved", version: int = 2, **terms) -> ContractState:
    doc = load_contract(CONTRACTS / name)
    return ContractState(
        id=doc.id, version=version, revision=1, status=status, actor="dpo@example.com", reason="because",
        recorded_at=NOW, terms=replace(doc.terms, **terms), sha256=doc.sha256, source_file=None, registered_by="ml-lead@example.com",
    )


def decide(contracts, purpose="train_ai_system", upstream=None):
    """INP derived from the origin SRC, unless ``upstream`` says otherwise."""
    upstream = upstream or {INP: Upstream.of([INP, SRC], [SRC])}
    return evaluate(job="ml:train", purpose=purpose, inputs=[INP], upstream=upstream, contracts=contracts, decided_at=NOW)


def test_approved_permitting_contract_allows():
    d = decide({SRC: [state("acme-stock-photos.yaml")]})
    assert d.allowed and d.reasons == () and d.passed_by == {SRC: "acme-stock-photos@2"}


def test_no_contract_names_input_and_source():
    d = decide({})
    assert not d.allowed
    [r] = d.reasons
    assert (r.code, r.dataset, r.source, r.contract) == ("no_contract", INP, SRC, None)
    assert "lineage contracts register" in r.message


def test_status_reasons():
    for status, code in (("proposed", "not_approved"), ("revoked", "revoked"), ("expired", "expired")):
        d = decide({SRC: [state("acme-stock-photos.yaml", status=status)]})
        assert [r.code for r in d.reasons] == [code], status
        assert d.reasons[0].contract == "acme-stock-photos@2" and d.reasons[0].clause
    revoked = decide({SRC: [state("acme-stock-photos.yaml", status="revoked")]}).reasons[0]
    assert "dpo@example.com" in revoked.message and "because" in revoked.message


def test_expiry_date_blocks_even_if_not_yet_marked():
    d = decide({SRC: [state("acme-stock-photos.yaml", expires=dt.date(2026, 1, 1))]})
    assert [r.code for r in d.reasons] == ["expired"] and d.reasons[0].clause == "customProperties[expires]"


def test_essential_service_only_blocks_training_with_each_clause():
    d = decide({SRC: [state("lovematch-photos.yaml")]})
    assert {r.code for r in d.reasons} == {"purpose_not_permitted", "purpose_prohibited"}
    assert {r.clause for r in d.reasons} == {"customProperties[permittedPurposes]", "customProperties[prohibitedPurposes].train_ai_system"}
    # ...and allows the purpose it was given for, hierarchy included (essential.service covers its sub-uses).
    assert decide({SRC: [state("lovematch-photos.yaml")]}, purpose="essential.service.operations").allowed


def test_categories_the_purpose_may_not_use():
    extra = ("user.content.self_image", "user.biometric.health")
    d = decide({SRC: [state("acme-stock-photos.yaml", data_categories=extra)]})
    [r] = d.reasons
    assert r.code == "category_not_permitted" and "user.biometric.health" in r.message
    # A permission on a parent category covers the child.
    wide = (Permission("train_ai_system", ("user.content", "user.biometric")),)
    assert decide({SRC: [state("acme-stock-photos.yaml", data_categories=extra, permitted=wide)]}).allowed


def test_prohibition_of_a_sub_use_blocks_the_whole_purpose():
    d = decide({SRC: [state("acme-stock-photos.yaml", prohibited=("train_ai_system",))]}, purpose="train_ai_system")
    assert "purpose_prohibited" in [r.code for r in d.reasons]
    d = decide({SRC: [state("acme-stock-photos.yaml", permitted=(Permission("essential"),), prohibited=("essential.service.security",))]}, purpose="essential")
    assert [r.code for r in d.reasons] == ["purpose_prohibited"]


def test_every_origin_of_every_input_is_reported():
    other = "dataset:partner-drops:lovematch/photos"
    d = decide({SRC: [state("acme-stock-photos.yaml")]}, upstream={INP: Upstream.of([INP, SRC, other], [SRC, other])})
    assert not d.allowed and [(r.code, r.dataset, r.source) for r in d.reasons] == [("no_contract", INP, other)]
    assert "BLOCKED" in d.render() and other in d.render()


def test_no_inputs_is_blocked():
    d = evaluate(job="ml:train", purpose="train_ai_system", inputs=[], upstream={}, contracts={})
    assert not d.allowed and d.reasons[0].code == "no_inputs"


def test_failed_validation_blocks_with_its_clause():
    d = decide({SRC: [state("acme-stock-photos.yaml")]})
    v = Validation(INP, "acme-stock-photos.photos", "acme-stock-photos@2", False, (
        {"type": "expect_column_values_to_be_in_set", "column": "source_contract_id", "clause": "customProperties[provenanceColumn]",
         "success": False, "unexpected_count": 3, "element_count": 10, "sample": ["lovematch-photos"]},
    ))
    d = d.with_validations([v])
    assert not d.allowed
    [r] = d.reasons
    assert r.code == "expectation_failed" and "3 of 10" in r.message and r.clause == "customProperties[provenanceColumn]"


# -- the rules that cannot be walked around (issue 7) -------------------------------------------
LOVE = "dataset:partner-drops:lovematch/photos"
CLEAN = "dataset:clean:photos"


def permissive(cid: str = "clean-photos", **kw) -> ContractState:
    """The ACME contract's terms under another id (any approved contract that permits training)."""
    return replace(state("acme-stock-photos.yaml", **kw), id=cid)


def test_a_prohibition_on_a_dataset_in_the_middle_blocks_whatever_its_origins_permit():
    # The laundering shape: clean/photos (permitted) -> job x:launder -> lovematch/photos (prohibited) -> ... -> INP.
    up = {INP: Upstream.of([INP, LOVE, CLEAN], [CLEAN])}
    d = decide({CLEAN: [permissive()], LOVE: [state("lovematch-photos.yaml")]}, upstream=up)
    assert not d.allowed
    assert {(r.code, r.dataset, r.source, r.contract) for r in d.reasons} == {
        ("purpose_prohibited", INP, LOVE, "lovematch-photos@2"),
        ("purpose_not_permitted", INP, LOVE, "lovematch-photos@2"),
    }
    assert d.sources[INP] == (CLEAN,) and d.checked[INP] == (CLEAN, LOVE)
    assert "also checked upstream: " + LOVE in d.render()


def test_the_input_itself_is_checked_when_a_contract_covers_it():
    up = {INP: Upstream.of([INP, SRC], [SRC])}
    d = decide({SRC: [state("acme-stock-photos.yaml")], INP: [state("lovematch-photos.yaml")]}, upstream=up)
    assert not d.allowed and {r.source for r in d.reasons} == {INP}


def test_a_covered_dataset_upstream_must_also_be_permitted_not_only_unprohibited():
    # LoveMatch's terms without the explicit prohibition: a contract that permits only another purpose still blocks.
    up = {INP: Upstream.of([INP, LOVE, CLEAN], [CLEAN])}
    d = decide({CLEAN: [permissive()], LOVE: [state("lovematch-photos.yaml", prohibited=())]}, upstream=up)
    assert [(r.code, r.source) for r in d.reasons] == [("purpose_not_permitted", LOVE)]


def test_every_origin_needs_its_own_contract_including_one_written_by_a_job_without_inputs():
    # T <- J1 <- {R, Q}; R <- J0() : both R and Q are origins; only Q has a contract.
    r, q = "dataset:raw:r", "dataset:raw:q"
    d = decide({q: [permissive()]}, upstream={INP: Upstream.of([INP, r, q], [r, q])})
    assert [(x.code, x.dataset, x.source) for x in d.reasons] == [("no_contract", INP, r)]


def test_two_contracts_on_one_dataset_deny_wins_in_either_order():
    for contracts in ([permissive("a-permits"), state("lovematch-photos.yaml")], [state("lovematch-photos.yaml"), permissive("z-permits")]):
        d = decide({SRC: contracts})
        assert not d.allowed and "purpose_prohibited" in [r.code for r in d.reasons], contracts
        # the permissive contract's permission is noted, but the prohibition names its own contract and clause
        [p] = [r for r in d.reasons if r.code == "purpose_prohibited"]
        assert (p.contract, p.clause) == ("lovematch-photos@2", "customProperties[prohibitedPurposes].train_ai_system")
        assert SRC not in d.passed_by


def test_a_contract_that_merely_does_not_list_the_purpose_does_not_deny():
    # Rule 5: "not permitted" is a shortfall, not a denial; another contract's permission covers it.
    d = decide({SRC: [permissive("a-permits"), state("lovematch-photos.yaml", prohibited=())]})
    assert d.allowed and d.passed_by[SRC] == "a-permits@2"


def test_revoked_expired_or_unapproved_contract_blocks_beside_a_permissive_one():
    for status, code in (("revoked", "revoked"), ("expired", "expired"), ("proposed", "not_approved")):
        d = decide({SRC: [permissive("a-permits"), state("acme-stock-photos.yaml", status=status)]})
        assert not d.allowed and [r.code for r in d.reasons] == [code], status
    d = decide({SRC: [permissive("a-permits"), state("acme-stock-photos.yaml", expires=dt.date(2026, 1, 1))]})
    assert [r.code for r in d.reasons] == ["expired"]


def test_unknown_input_is_unknown_provenance_not_its_own_source():
    stranger = "dataset:nowhere:photos"
    d = evaluate(job="ml:train", purpose="train_ai_system", inputs=[INP, stranger],
                 upstream={INP: Upstream.of([INP, SRC], [SRC])}, contracts={SRC: [state("acme-stock-photos.yaml")]}, decided_at=NOW)
    assert not d.allowed
    [r] = d.reasons
    assert (r.code, r.dataset, r.source) == ("unknown_provenance", stranger, stranger)
    assert "origins: unknown" in d.render() and stranger not in d.sources
    # even a contract naming the unknown dataset does not vouch for data nothing records
    d = evaluate(job="ml:train", purpose="train_ai_system", inputs=[stranger], upstream={},
                 contracts={stranger: [state("acme-stock-photos.yaml")]}, decided_at=NOW)
    assert [r.code for r in d.reasons] == ["unknown_provenance"]


def test_look_alike_name_is_another_dataset():
    look_alike = "dataset:partner-drops:acme/ph\u043etos"  # Cyrillic o
    d = decide({SRC: [state("acme-stock-photos.yaml")]}, upstream={INP: Upstream.of([INP, look_alike], [look_alike])})
    assert [(r.code, r.source) for r in d.reasons] == [("no_contract", look_alike)]


def test_a_denial_upstream_of_two_inputs_is_reported_for_each():
    other = "dataset:curated:other"
    up = {INP: Upstream.of([INP, SRC], [SRC]), other: Upstream.of([other, SRC], [SRC])}
    d = evaluate(job="ml:train", purpose="train_ai_system", inputs=[INP, other], upstream=up,
                 contracts={SRC: [state("acme-stock-photos.yaml", status="revoked")]}, decided_at=NOW)
    assert [(r.code, r.dataset, r.source) for r in d.reasons] == [("revoked", INP, SRC), ("revoked", other, SRC)]
