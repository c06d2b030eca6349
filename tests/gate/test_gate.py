"""The issue's "done when", end to end: real store, real lineage, real GX validations on pandas.

The demo pipeline: partner drops (acme, lovematch) → raw zone → curated training set → model.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from gate_helpers import ACME, CURATED, LOVE, STEWARD, TRAIN_JOB, acme_frame, register

from lineage.contracts import registry
from lineage.errors import SelfApprovalRefused
from lineage.gate.facets import facet_schema, input_facets
from lineage.gate.service import recent
from lineage.gate.service import check_gate

INGEST_JOB = "ml-pipeline:ingest_partner_drop.acme"
pytestmark = pytest.mark.gx


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


def test_uncontracted_partner_drop_is_blocked_and_says_why(pipeline):
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    assert not d.allowed
    [r] = d.reasons
    assert (r.code, r.dataset, r.source) == ("no_contract", ACME, ACME)
    assert "has no contract" in d.render() and "BLOCKED" in d.render()
    assert d.validations == ()  # no data is validated for a run that is refused on contracts


def test_passes_once_an_independent_steward_approves_a_permitting_contract(pipeline):
    register(pipeline, "acme-stock-photos.yaml")
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    assert codes(d) == ["not_approved"] and d.reasons[0].contract == "acme-stock-photos@1"
    with pipeline.connection() as conn:
        registry.approve(conn, "acme-stock-photos", STEWARD)
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    assert d.allowed, d.render()
    [v] = d.validations
    assert v.success and v.suite == "acme-stock-photos.photos" and len(v.results) == 6  # real GX results
    assert d.passed_by == {ACME: "acme-stock-photos@2"}


def test_gx_blocks_undeclared_columns_and_rows_from_unapproved_sources(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    frame = acme_frame(500)
    frame["ethnicity"] = "unknown"  # a silent sensitive column
    frame.loc[[3, 7, 11], "source_contract_id"] = "lovematch-photos"
    frame.loc[5, "license_id"] = None
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: frame})
    assert not d.allowed
    by_clause = {r.clause: r for r in d.reasons}
    assert "ethnicity" in by_clause["schema[photos].properties"].message
    prov = by_clause["customProperties[provenanceColumn]"]
    assert "3 of 500" in prov.message and "lovematch-photos" in prov.message and prov.contract == "acme-stock-photos@2"
    assert "schema[photos].properties[license_id].required" in by_clause


def test_curated_dataset_derived_from_a_blocked_source_is_blocked_through_lineage(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)  # acme is fine; lovematch has no contract
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed
    assert set(d.sources[CURATED]) == {ACME, LOVE}
    [r] = d.reasons
    assert (r.code, r.dataset, r.source) == ("no_contract", CURATED, LOVE)


def test_essential_service_only_contract_blocks_training(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    register(pipeline, "lovematch-photos.yaml", STEWARD)
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed
    assert set(codes(d)) == {"purpose_not_permitted", "purpose_prohibited"}
    assert all(r.source == LOVE and r.contract == "lovematch-photos@2" and r.dataset == CURATED for r in d.reasons)
    # the same sources may serve the purpose the contracts permit... except acme does not permit it.
    d = check_gate(pipeline, "app:match", "essential.service", [LOVE])
    assert d.allowed, d.render()


def test_revoking_an_approved_contract_blocks_the_next_run(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    assert check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()}).allowed
    with pipeline.connection() as conn:
        registry.revoke(conn, "acme-stock-photos", STEWARD, "ACME withdrew the licence")
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    assert codes(d) == ["revoked"] and "ACME withdrew the licence" in d.render()


def test_self_approval_is_refused_and_the_gate_stays_shut(pipeline):
    register(pipeline, "acme-stock-photos.yaml")
    with pytest.raises(SelfApprovalRefused), pipeline.connection() as conn:
        registry.approve(conn, "acme-stock-photos", "ml-lead@example.com")
    assert codes(check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME])) == ["not_approved"]


def test_store_unreachable_blocks(tmp_path):
    from lineage.config import Settings

    dead = Settings(home=tmp_path, database_url=f"postgresql://nobody@/lineage?host={tmp_path}&connect_timeout=1")
    d = check_gate(dead, TRAIN_JOB, "train_ai_system", [CURATED], connect_timeout=1.0)
    assert not d.allowed and codes(d) == ["store_unavailable"]
    assert "fails closed" in d.render()


def test_store_lost_after_opening_blocks(db):
    db.close()  # the pool is gone: every query fails
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed and codes(d)[0] in ("store_unavailable", "gate_error")


def test_decisions_are_stored_with_openlineage_facets(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    allowed = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    refused = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    with pipeline.connection() as conn:
        rows = recent(conn)
    assert [r["decisionId"] for r in rows] == [refused.decision_id, allowed.decision_id]
    assert rows[1]["allowed"] and not rows[0]["allowed"] and rows[0]["reasons"][0]["code"] == "no_contract"
    facets = input_facets(allowed)[ACME]
    schema = facet_schema()
    contract_facet = facets["facets"]["sourceContract"]
    jsonschema.validate(contract_facet, {**schema, "$ref": "#/$defs/SourceContractDatasetFacet", "$defs": {
        **schema["$defs"], "SourceContractDatasetFacet": schema["$defs"]["SourceContractDatasetFacet"]["allOf"][1]}})
    assert contract_facet["_schemaURL"].endswith("/1-0-0/SourceContractDatasetFacet.json#/$defs/SourceContractDatasetFacet")
    assert contract_facet["sources"] == [{"namespace": "partner-drops", "name": "acme/photos", "contract": "acme-stock-photos@2"}]
    dq = facets["inputFacets"]["dataQualityAssertions"]
    assert dq["_schemaURL"].startswith("https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json")
    assert {a["assertion"] for a in dq["assertions"]} >= {"expect_table_columns_to_match_set", "expect_column_values_to_be_in_set"}
    assert all(a["success"] for a in dq["assertions"])
    json.dumps(rows, default=str)


def test_gate_event_is_valid_openlineage_and_ingests(pipeline):
    from tests_support import SPEC_VALIDATOR

    from lineage.events import parse_event
    from lineage.gate.facets import gate_event
    from lineage.store.ingest import ingest_events

    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    event = gate_event(d)
    assert list(SPEC_VALIDATOR.iter_errors(event)) == []
    assert event["eventType"] == "COMPLETE" and event["job"]["name"] == "ingest_partner_drop.acme.contract_gate"
    [inp] = event["inputs"]
    assert set(inp["facets"]) == {"sourceContract"} and set(inp["inputFacets"]) == {"dataQualityAssertions"}
    with pipeline.connection() as conn:
        assert ingest_events(conn, [parse_event(event)]).stored == 1
