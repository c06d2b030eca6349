"""The pure decision: every reason names the dataset, source, contract and clause."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from gate_helpers import CONTRACTS

from lineage.contracts.document import load_contract
from lineage.contracts.registry import ContractState
from lineage.contracts.terms import Permission
from lineage.gate.decision import Validation, evaluate

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
SRC = "dataset:partner-drops:acme/photos"
INP = "dataset:curated:training.face_photos_v1"


def state(name: str, status: str = "approved", version: int = 2, **terms) -> ContractState:
    doc = load_contract(CONTRACTS / name)
    return ContractState(
        id=doc.id, version=version, revision=1, status=status, actor="dpo@example.com", reason="because",
        recorded_at=NOW, terms=replace(doc.terms, **terms), sha256=doc.sha256, source_file=None, registered_by="ml-lead@example.com",
    )


def decide(contracts, purpose="train_ai_system", sources=None):
    return evaluate(job="ml:train", purpose=purpose, inputs=[INP], sources=sources or {INP: [SRC]}, contracts=contracts, decided_at=NOW)


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


def test_any_permitting_contract_lets_a_source_through():
    d = decide({SRC: [state("lovematch-photos.yaml"), state("acme-stock-photos.yaml")]})
    assert d.allowed and d.passed_by[SRC] == "acme-stock-photos@2"


def test_every_source_of_every_input_is_reported():
    other = "dataset:partner-drops:lovematch/photos"
    d = decide({SRC: [state("acme-stock-photos.yaml")]}, sources={INP: [SRC, other]})
    assert not d.allowed and [(r.code, r.source) for r in d.reasons] == [("no_contract", other)]
    assert "BLOCKED" in d.render() and other in d.render()


def test_no_inputs_is_blocked():
    d = evaluate(job="ml:train", purpose="train_ai_system", inputs=[], sources={}, contracts={})
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
