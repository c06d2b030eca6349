"""The issue's "done when", end to end: real store, real lineage, real GX validations on pandas.

The demo pipeline: partner drops (acme, lovematch) → raw zone → curated training set → model.
The rules are those of ``lineage.gate.decision``; the regression tests for issue 7's bypasses
are marked as such.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from gate_helpers import ACME, CURATED, LOVE, ROOT, STEWARD, TRAIN_JOB, acme_frame, contract_like, ingest, read_event, register

from tests_support import principal

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
    assert v.success and v.suite == "acme-stock-photos.photos" and len(v.results) == len(json.loads((ROOT / "expectations" / "acme-stock-photos.photos.json").read_text())["expectations"])  # real GX results
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
    assert all(r.source == LOVE and r.contract == "lovematch-photos@3" and r.dataset == CURATED for r in d.reasons)
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
        registry.approve(conn, "acme-stock-photos", principal("ml-lead@example.com", "steward"))
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


# -- issue 7: no way around the gate -------------------------------------------------------------
CLEAN = "dataset:clean:photos"
MODEL = "dataset:models:face-embedder"


def test_regression_laundering_a_prohibited_dataset_through_a_forged_writer_stays_blocked(pipeline, tmp_path):
    """Bypass (a): one forged event (`x:launder`, clean/photos -> lovematch/photos) made lovematch's data trainable."""
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    register(pipeline, "lovematch-photos.yaml", STEWARD)  # prohibits train_ai_system
    register(pipeline, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    ingest(pipeline, read_event("x:launder", [CLEAN], [LOVE]))
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed, d.render()
    # lovematch was read before the forged writer was recorded, so it stays an origin (see
    # test_adversarial for a writer recorded first: then it is derived, and still checked)
    assert LOVE in d.sources[CURATED] and LOVE in d.checked[CURATED]
    prohibited = [r for r in d.reasons if r.code == "purpose_prohibited"]
    assert [(r.dataset, r.source, r.contract, r.clause) for r in prohibited] == [
        (CURATED, LOVE, "lovematch-photos@3", "customProperties[prohibitedPurposes].train_ai_system")]
    # ...and so is anything further downstream, e.g. a job training on the model.
    d = check_gate(pipeline, "ml:finetune", "train_ai_system", [MODEL])
    assert not d.allowed and {r.source for r in d.reasons} == {LOVE}


def test_regression_a_dataset_written_by_a_job_without_inputs_is_checked(db, tmp_path):
    """Bypass (a'): for T <- J1 <- {R, Q} with R <- J0(), only Q was checked."""
    t, r, q = "dataset:curated:t", "dataset:raw:r", "dataset:raw:q"
    ingest(db, read_event("ml:j0", [], [r]) + read_event("ml:j1", [r, q], [t]))
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "q-photos", q), STEWARD)
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [t])
    assert not d.allowed and set(d.sources[t]) == {r, q}
    assert [(x.code, x.dataset, x.source) for x in d.reasons] == [("no_contract", t, r)]
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "r-photos", r), STEWARD)
    assert check_gate(db, TRAIN_JOB, "train_ai_system", [t]).allowed


def test_regression_two_contracts_on_one_dataset_deny_wins(pipeline, tmp_path):
    """Bypass (b): a second permissive contract overrode another contract's prohibition."""
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    register(pipeline, contract_like(tmp_path, "lovematch-photos.yaml", "acme-forbids", ACME), STEWARD)
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME])
    assert not d.allowed
    assert ("purpose_prohibited", "acme-forbids@3") in {(r.code, r.contract) for r in d.reasons}
    assert d.contracts == {"acme-stock-photos": 2, "acme-forbids": 3} and ACME not in d.passed_by


def test_regression_a_revoked_contract_beside_a_permissive_one_blocks(pipeline, tmp_path):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    register(pipeline, contract_like(tmp_path, "acme-stock-photos.yaml", "acme-second-licence", ACME), STEWARD)
    assert check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME]).allowed
    with pipeline.connection() as conn:
        registry.revoke(conn, "acme-second-licence", STEWARD, "second licence withdrawn")
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME])
    assert [(r.code, r.contract) for r in d.reasons] == [("revoked", "acme-second-licence@3")]


def test_regression_an_input_the_store_never_saw_is_unknown_provenance(pipeline, tmp_path):
    stranger = "dataset:partner-drops:stranger/photos"
    register(pipeline, contract_like(tmp_path, "acme-stock-photos.yaml", "stranger-photos", stranger), STEWARD)
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [stranger])
    assert not d.allowed and [(r.code, r.dataset) for r in d.reasons] == [("unknown_provenance", stranger)]
    # once the store records a job reading it, it is a known origin, and its contract lets it through
    ingest(pipeline, read_event("ml:ingest_stranger", [stranger], ["dataset:raw-zone:stranger"]))
    assert check_gate(pipeline, TRAIN_JOB, "train_ai_system", [stranger]).allowed


def test_a_unicode_look_alike_name_is_another_dataset_without_a_contract(pipeline):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    look_alike = "dataset:partner-drops:acme/ph\u043etos"  # Cyrillic о
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [look_alike])
    assert [r.code for r in d.reasons] == ["unknown_provenance"]
    ingest(pipeline, read_event("x:copy", [look_alike], ["dataset:curated:copied"]))
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", ["dataset:curated:copied"])
    assert [(r.code, r.source) for r in d.reasons] == [("no_contract", look_alike)]
    assert check_gate(pipeline, TRAIN_JOB, "train_ai_system", [ACME]).allowed  # the real one is unaffected


def test_a_later_proposed_revision_keeps_the_approved_version_in_force(pipeline, tmp_path):
    """Registry semantics: the latest approved version of each contract governs until revoked or expired."""
    register(pipeline, "acme-stock-photos.yaml", STEWARD)  # v1 proposed, v2 approved (revision 1)
    revised = tmp_path / "acme-v2.yaml"
    revised.write_text((gate_contracts() / "acme-stock-photos.yaml").read_text().replace(
        "Face detection and image-quality models.", "Face detection, image-quality and smile models."))
    assert register(pipeline, revised).ref == "acme-stock-photos@3"  # revision 2, proposed
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME])
    assert d.allowed and d.passed_by == {ACME: "acme-stock-photos@2"}, d.render()
    with pipeline.connection() as conn:
        registry.approve(conn, "acme-stock-photos", STEWARD)  # v4: revision 2 approved, now governs
    assert check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME]).passed_by == {ACME: "acme-stock-photos@4"}
    with pipeline.connection() as conn:
        registry.revoke(conn, "acme-stock-photos", STEWARD, "licence withdrawn")  # v5
    assert [(r.code, r.contract) for r in check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME]).reasons] == [
        ("revoked", "acme-stock-photos@5")]
    register(pipeline, tmp_path / "acme-v2.yaml")  # v6: re-registered after the revocation, not yet approved
    assert [r.code for r in check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME]).reasons] == ["not_approved"]


def test_a_proposed_revision_after_approval_that_drops_a_prohibition_changes_nothing(pipeline, tmp_path):
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    register(pipeline, "lovematch-photos.yaml", STEWARD)
    softer = tmp_path / "lovematch-softer.yaml"
    softer.write_text((gate_contracts() / "lovematch-photos.yaml").read_text().replace(
        "value: [train_ai_system, third_party_sharing]", "value: [third_party_sharing]"))
    register(pipeline, softer)  # proposed, never approved
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    assert "purpose_prohibited" in codes(d) and {r.contract for r in d.reasons} == {"lovematch-photos@3"}


def gate_contracts():
    from gate_helpers import CONTRACTS

    return CONTRACTS


# -- issue 7 item 8: the decision commits with its log row; refusals by error are logged too -----
def _logged(db, decision_id: str) -> list[dict]:
    with db.connection() as conn:
        return [r for r in recent(conn, limit=1000) if r["decisionId"] == decision_id]


def test_store_unreachable_keeps_the_refusal_pending_and_records_it_once_when_back(db, tmp_path):
    from lineage.config import Settings
    from lineage.gate import pending
    from lineage.store import decisions

    home = tmp_path / "home"
    closed_port = Settings(home=home, database_url="postgresql://nobody@127.0.0.1:18119/lineage?connect_timeout=1")
    d = check_gate(closed_port, TRAIN_JOB, "train_ai_system", [CURATED], connect_timeout=1.0)
    assert not d.allowed and codes(d) == ["store_unavailable"]
    folder = pending.directory(home)
    [path] = pending.pending(folder)
    assert path.name == f"{d.decision_id}.json" and [p.name for p in folder.iterdir()] == [path.name]  # no temporary left
    kept = pending.read(path)
    assert (kept["allowed"], kept["reasons"][0]["code"], kept["decided_at"]) == (False, "store_unavailable", d.decided_at)

    later = check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED], pending_dir=folder)  # the store is reachable again
    [row] = _logged(db, d.decision_id)
    assert not row["allowed"] and row["reasons"][0]["code"] == "store_unavailable" and pending.pending(folder) == []
    assert len(_logged(db, later.decision_id)) == 1
    # A crash between the commit and the file's removal leaves the file: flushing it again stores nothing new.
    pending.write(folder, kept)
    with db.connection() as conn:
        assert pending.flush(conn, folder) == 0
    check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED], pending_dir=folder)
    with db.connection() as conn:
        assert decisions.count(conn, d.decision_id) == 1


def test_store_lost_after_opening_keeps_the_refusal_under_lineage_home(db, own_home):
    from lineage.gate import pending

    db.close()
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed and codes(d) == ["store_unavailable"]
    assert [p.name for p in pending.pending(pending.directory(own_home))] == [f"{d.decision_id}.json"]


def test_a_validation_that_raises_is_blocked_and_logged(pipeline, monkeypatch):
    from lineage.gate import runner

    register(pipeline, "acme-stock-photos.yaml", STEWARD)

    def crash(*args, **kwargs):
        raise RuntimeError("GX worker crashed")

    monkeypatch.setattr(runner, "validate", crash)  # a fault-injecting runner; the store is real
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME], {ACME: acme_frame()})
    assert not d.allowed and codes(d) == ["gate_error"] and "GX worker crashed" in d.render()
    with pipeline.connection() as conn:
        rows = recent(conn, INGEST_JOB)
    assert [(r["decisionId"], r["allowed"]) for r in rows] == [(d.decision_id, False)]  # the refusal only, never an allow


def test_an_allow_whose_log_row_cannot_be_written_is_not_an_allow(pipeline, role_urls):
    import psycopg

    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    # A store that refuses to log allowed decisions (e.g. a full disk on that page); the fault is
    # injected by the owner role, since the application role has no DDL.
    with psycopg.connect(role_urls["owner"]) as conn:
        conn.execute("""CREATE FUNCTION refuse_allows() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN IF NEW.allowed THEN RAISE EXCEPTION 'cannot write the log'; END IF; RETURN NEW; END $$""")
        conn.execute("CREATE TRIGGER refuse_allows BEFORE INSERT ON gate_decisions FOR EACH ROW EXECUTE FUNCTION refuse_allows()")
    d = check_gate(pipeline, INGEST_JOB, "train_ai_system", [ACME])
    assert not d.allowed and codes(d) == ["gate_error"] and "cannot write the log" in d.render()
    with pipeline.connection() as conn:
        assert [(r["decisionId"], r["allowed"]) for r in recent(conn)] == [(d.decision_id, False)]


def test_a_bad_pending_file_is_set_aside_and_the_others_recorded(db, tmp_path):
    from lineage.gate import pending
    from lineage.gate.decision import blocked
    from lineage.gate.service import decision_row

    folder = tmp_path / "gate-pending"
    good = blocked(TRAIN_JOB, "train_ai_system", [CURATED], "store_unavailable", "store down")
    pending.write(folder, decision_row(good))
    (folder / "0-garbage.json").write_text("{not json")
    (folder / ".half-written.json.tmp").write_text('{"decision_id": ')  # a crash mid-write: never read
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED], pending_dir=folder)
    assert codes(d) == ["unknown_provenance"]
    assert len(_logged(db, good.decision_id)) == 1
    assert sorted(p.name for p in folder.iterdir()) == [".half-written.json.tmp", "0-garbage.json.rejected"]


def test_nul_and_lone_surrogates_in_a_request_are_refused_and_still_logged(pipeline):
    d = check_gate(pipeline, "ml:tr\x00ain", "train_ai_system", ["dataset:partner-drops:acme/ph\x00otos\ud800"])
    assert not d.allowed
    with pipeline.connection() as conn:
        [row] = recent(conn)
    assert row["decisionId"] == d.decision_id and not row["allowed"] and row["job"] == "ml:tr\ufffdain"
