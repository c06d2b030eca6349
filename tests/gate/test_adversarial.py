"""A hostile review of the gate: ways around it found by posting real events to a real store.

Each test is an attack by someone who wants ALLOWED for training on the dating-app photos (or a
careless pipeline), and asserts the gate still says BLOCKED, naming why.
"""

from __future__ import annotations

import json
import uuid

import pytest
from gate_helpers import ACME, CURATED, LOVE, STEWARD, TRAIN_JOB, codes, contract_like, ingest, read_event, register

from lineage.gate import pending
from lineage.gate.service import DEPTH, check_gate, recent

CLEAN = "dataset:clean:photos"
pytestmark = pytest.mark.gx


def test_a_later_forged_writer_does_not_launder_an_uncontracted_origin(pipeline, tmp_path):
    """lovematch/photos has no contract and was already read as a source; a writer recorded
    afterwards (`x:launder`, clean/photos -> lovematch/photos) does not explain the data that
    was read before it, so lovematch/photos stays an origin and needs its own contract."""
    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    register(pipeline, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    before = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    assert codes(before) == ["no_contract"] and before.reasons[0].source == LOVE
    ingest(pipeline, read_event("x:launder", [CLEAN], [LOVE]))
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed, d.render()
    assert LOVE in d.sources[CURATED]
    assert [(r.code, r.source) for r in d.reasons] == [("no_contract", LOVE)]


def test_a_prohibited_dataset_written_before_it_was_ever_read_is_derived_and_still_checked(db, tmp_path):
    """The forged writer posted first (before the pipeline's events): lovematch is then derived
    from clean/photos, not an origin, and its prohibition still blocks."""
    from example_pipeline.sample import ml_pipeline_sample

    register(db, "acme-stock-photos.yaml", STEWARD)
    register(db, "lovematch-photos.yaml", STEWARD)
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    ingest(db, read_event("x:launder", [CLEAN], [LOVE]))
    ingest(db, ml_pipeline_sample())
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED])
    assert LOVE not in d.sources[CURATED] and LOVE in d.checked[CURATED]
    assert not d.allowed and {r.source for r in d.reasons} == {LOVE} and "purpose_prohibited" in codes(d)


def test_a_writer_recorded_before_any_read_makes_a_derived_dataset(db, tmp_path):
    """The honest order (producer recorded, then its consumer) still derives: no extra contract needed."""
    raw, cur = "dataset:raw:r", "dataset:curated:c"
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    ingest(db, read_event("etl:load", [CLEAN], [raw]))
    ingest(db, read_event("etl:curate", [raw], [cur]))
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [cur])
    assert d.allowed, d.render()
    assert d.sources[cur] == (CLEAN,)


def test_a_chain_longer_than_the_depth_limit_cannot_hide_a_prohibited_source(pipeline, tmp_path):
    """lovematch -> j0 -> clean/photos (permitted) -> j1 -> ... -> j100 -> d100: the walk stopped at
    clean/photos and took it for an origin, so lovematch's prohibition was never seen."""
    register(pipeline, "lovematch-photos.yaml", STEWARD)
    register(pipeline, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    events = read_event("x:j0", [LOVE], [CLEAN])
    prev = CLEAN
    for i in range(1, DEPTH + 1):
        nxt = f"dataset:chain:d{i}"
        events += read_event(f"x:j{i}", [prev], [nxt])
        prev = nxt
    ingest(pipeline, events)
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [prev])
    assert not d.allowed, d.render()
    assert [(r.code, r.source) for r in d.reasons] == [("lineage_too_deep", CLEAN)]
    # one job shorter is within reach, and the prohibition is found
    d = check_gate(pipeline, TRAIN_JOB, "train_ai_system", [f"dataset:chain:d{DEPTH - 1}"])
    assert not d.allowed and "purpose_prohibited" in codes(d) and "lineage_too_deep" not in codes(d)


@pytest.mark.parametrize("purpose", [
    "essential.service.train_ai_system",  # a made-up child of what lovematch permits
    "essential.service ",                 # trailing space
    "Essential.Service",                  # case
    "",
])
def test_a_purpose_the_taxonomy_does_not_know_is_blocked(pipeline, purpose):
    register(pipeline, "lovematch-photos.yaml", STEWARD)  # permits essential.service, prohibits training
    assert check_gate(pipeline, "app:match", "essential.service", [LOVE]).allowed
    d = check_gate(pipeline, "app:match", purpose, [LOVE])
    assert not d.allowed, d.render()
    assert codes(d) == ["unknown_purpose"]


def _row(**over):
    row = {"decision_id": str(uuid.uuid4()), "job_namespace": "ml-pipeline", "job_name": "train_model.train",
           "purpose": "train_ai_system", "allowed": False, "inputs": {"inputs": [CURATED]},
           "reasons": [{"code": "store_unavailable", "message": "down"}], "contracts": {}, "validations": [], "facets": {},
           "decided_at": "2026-11-01T00:00:00+00:00"}
    return {**row, **over}


@pytest.mark.parametrize("forged", [
    {"allowed": True, "reasons": []},                          # an ALLOWED decision that never happened
    {"allowed": "false"},                                      # not a boolean
    {"reasons": []},                                           # a refusal with no reason
    {"reasons": [{"code": "no_contract", "message": "x"}]},    # a contract decision: only the store makes those
    {"decision_id": "../../etc/passwd"},                       # not a decision id
])
def test_a_forged_pending_file_never_reaches_the_decision_log(pipeline, own_home, forged):
    folder = pending.directory(own_home)
    folder.mkdir(parents=True)
    row = _row(**forged)
    (folder / "forged.json").write_text(json.dumps(row), encoding="utf-8")
    check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED], pending_dir=folder)
    with pipeline.connection() as conn:
        rows = recent(conn)
    assert [r["decisionId"] for r in rows if r["decisionId"] == row["decision_id"]] == []
    assert not any(r["allowed"] for r in rows)
    assert (folder / "forged.json.rejected").exists()


def test_a_pending_file_must_carry_the_decision_id_it_is_named_after(pipeline, own_home):
    folder = pending.directory(own_home)
    folder.mkdir(parents=True)
    row = _row()
    (folder / f"{uuid.uuid4()}.json").write_text(json.dumps(row), encoding="utf-8")
    good = _row()
    (folder / f"{good['decision_id']}.json").write_text(json.dumps(good), encoding="utf-8")
    check_gate(pipeline, TRAIN_JOB, "train_ai_system", [CURATED], pending_dir=folder)
    with pipeline.connection() as conn:
        ids = {r["decisionId"] for r in recent(conn)}
    assert good["decision_id"] in ids and row["decision_id"] not in ids


def _photos_contract_on(tmp_path, base: str, cid: str, namespace: str, name: str):
    """A copy of ``base`` under id ``cid`` covering ``namespace`` / ``name`` (which may hold a colon)."""
    from gate_helpers import CONTRACTS, load_yaml_contract_id

    text = (CONTRACTS / base).read_text(encoding="utf-8")
    old_id, ns, nm = load_yaml_contract_id(text)
    text = text.replace(f"id: {old_id}\n", f"id: {cid}\n", 1).replace(
        f"      - namespace: {ns}\n        name: {nm}\n", f"      - namespace: '{namespace}'\n        name: '{name}'\n", 1)
    path = tmp_path / f"{cid}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_contract_on_a_name_with_a_colon_applies_upstream(db, tmp_path):
    """The gate split its own graph's ids at the last colon to look contracts up, so a contract
    on `partner-drops` / `love:photos` was looked for under `partner-drops:love` / `photos`: the
    prohibited dataset, once derived (its writer recorded first), was checked against nothing."""
    from datetime import datetime, timezone

    from lineage.samples import dataset, run_pair

    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    register(db, _photos_contract_on(tmp_path, "lovematch-photos.yaml", "love-colon", "partner-drops", "love:photos"), STEWARD)
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    love = dataset("partner-drops", "love:photos")
    ingest(db, run_pair(("x", "launder"), 1, [dataset("clean", "photos")], [love], t0))
    ingest(db, run_pair(("x", "curate"), 1, [love], [dataset("curated", "c")], t0))
    d = check_gate(db, TRAIN_JOB, "train_ai_system", ["dataset:curated:c"])
    assert not d.allowed, d.render()
    assert ("purpose_prohibited", "love-colon@3") in {(r.code, r.contract) for r in d.reasons}


def test_two_datasets_sharing_one_id_block_as_ambiguous(db, tmp_path):
    """`x` / `y:z` (uncontracted, a source) and `x:y` / `z` (written from clean/photos) are both
    `dataset:x:y:z`: merged into one node, the source looked derived from clean and passed."""
    from datetime import datetime, timezone

    from lineage.samples import dataset, run_pair

    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    ingest(db, run_pair(("x", "launder"), 1, [dataset("clean", "photos")], [dataset("x:y", "z")], t0))
    ingest(db, run_pair(("x", "curate"), 1, [dataset("x", "y:z"), dataset("x:y", "z")], [dataset("curated", "c")], t0))
    d = check_gate(db, TRAIN_JOB, "train_ai_system", ["dataset:curated:c"])
    assert not d.allowed, d.render()
    assert ("ambiguous_dataset", "dataset:x:y:z") in {(r.code, r.source) for r in d.reasons}


def test_every_covering_contracts_suite_runs_not_only_the_first(pipeline, tmp_path):
    """Deny wins for data too: a second approved contract on acme/photos that declares no
    `smiling` column must see its suite run; only the alphabetically first contract's suite did."""
    from gate_helpers import acme_frame

    register(pipeline, "acme-stock-photos.yaml", STEWARD)
    strict = contract_like(tmp_path, "acme-stock-photos.yaml", "zzz-strict", ACME)
    text = strict.read_text(encoding="utf-8")
    start, end = text.index("      - name: smiling\n"), text.index("    quality:\n      # The demo drop")
    strict.write_text(text[:start] + text[end:], encoding="utf-8")
    register(pipeline, strict, STEWARD)
    d = check_gate(pipeline, "ml-pipeline:ingest_partner_drop.acme", "train_ai_system", [ACME], {ACME: acme_frame()})
    assert not d.allowed, d.render()
    assert {v.suite for v in d.validations} == {"acme-stock-photos.photos", "zzz-strict.photos"}
    [failed] = [r for r in d.reasons if r.code == "expectation_failed"]
    assert failed.contract == "zzz-strict@2" and "smiling" in failed.message


@pytest.mark.parametrize("contract_form, event_form", [("NFC", "NFD"), ("NFD", "NFC")])
def test_a_contract_covers_its_dataset_under_either_unicode_normal_form(db, tmp_path, contract_form, event_form):
    """`café` typed in a contract (NFC) and `café` from a macOS path in events (NFD) are the same
    text by Unicode's definition; the prohibition must apply to the derived dataset either way."""
    import unicodedata
    from datetime import datetime, timezone

    from lineage.samples import dataset, run_pair

    name = "lovematch/café"
    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    register(db, _photos_contract_on(tmp_path, "lovematch-photos.yaml", "love-cafe", "partner-drops",
                                     unicodedata.normalize(contract_form, name)), STEWARD)
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    love = dataset("partner-drops", unicodedata.normalize(event_form, name))
    ingest(db, run_pair(("x", "sync"), 1, [dataset("clean", "photos")], [love], t0))
    ingest(db, run_pair(("x", "curate"), 1, [love], [dataset("curated", "c")], t0))
    d = check_gate(db, TRAIN_JOB, "train_ai_system", ["dataset:curated:c"])
    assert not d.allowed, d.render()
    assert ("purpose_prohibited", "love-cafe@3") in {(r.code, r.contract) for r in d.reasons}


def test_a_job_reading_and_writing_a_dataset_first_makes_it_an_origin(db, tmp_path):
    """`x:append` reads lovematch/photos and clean/photos and writes lovematch/photos, and is the
    first thing the store hears of it: lovematch's earlier content, which the job read, has no
    recorded upstream, so lovematch is an origin (the open self-loop must not hide it)."""
    register(db, contract_like(tmp_path, "acme-stock-photos.yaml", "clean-photos", CLEAN), STEWARD)
    ingest(db, read_event("x:append", [LOVE, CLEAN], [LOVE]))
    ingest(db, read_event("x:curate", [LOVE], [CURATED]))
    d = check_gate(db, TRAIN_JOB, "train_ai_system", [CURATED])
    assert not d.allowed, d.render()
    assert LOVE in d.sources[CURATED] and [(r.code, r.source) for r in d.reasons] == [("no_contract", LOVE)]
