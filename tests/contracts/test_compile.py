"""Compiled suites: checked in and current; they run in GX on frames and PostgreSQL tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg
import pytest

from lineage.contracts.compile import APPROVED_PARAMETER, compile_terms, write_suites
from lineage.contracts.document import load_contract, load_contracts

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_suites_are_current():
    assert write_suites(load_contracts(ROOT / "contracts"), ROOT / "expectations", check=True) == []


def test_compilation_is_deterministic_and_names_clauses(tmp_path):
    doc = load_contract(ROOT / "contracts" / "lovematch-photos.yaml")
    first, second = compile_terms(doc.terms, doc.sha256), compile_terms(doc.terms, doc.sha256)
    assert first == second
    suite = first["lovematch-photos.photos"]
    kinds = [e["type"] for e in suite["expectations"]]
    assert kinds[0] == "expect_table_columns_to_match_set" and kinds[-1] == "expect_column_values_to_be_in_set"
    assert suite["expectations"][-1]["kwargs"]["value_set"] == {"$PARAMETER": APPROVED_PARAMETER}
    assert all(e["meta"]["contract"] == "lovematch-photos" and e["meta"]["clause"] for e in suite["expectations"])
    stale = tmp_path / "lovematch-photos.photos.json"
    stale.write_text("{}")
    assert write_suites([doc], tmp_path, check=True) == [stale]


@pytest.mark.gx
def test_suite_runs_on_a_postgresql_table(db_url, role_urls):
    from lineage.gate.runner import SqlTable, validate

    doc = load_contract(ROOT / "contracts" / "acme-stock-photos.yaml")
    suite = compile_terms(doc.terms)["acme-stock-photos.photos"]
    embedding = [f"emb_{i:02d}" for i in range(16)]
    # The warehouse table is made by its owner (the application role has no DDL); the gate
    # reads it as the application role.
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE acme_photos (photo_id text, image_uri text, license_id text, captured_at text, source_contract_id text, "
            + ", ".join(f"{c} real" for c in embedding) + ", smiling int)"
        )
        conn.execute(
            "INSERT INTO acme_photos SELECT 'p' || i, 'partner-drops://acme/photos/' || i, 'LIC-1', '2026-01-01', "
            "CASE WHEN i % 10 = 0 THEN 'lovematch-photos' ELSE 'acme-stock-photos' END, "
            + ", ".join("random()" for _ in embedding) + ", i % 2 FROM generate_series(1, 100) i"
        )
    v = validate("dataset:warehouse:acme_photos", SqlTable(db_url, "acme_photos"), suite, ["acme-stock-photos"], "acme-stock-photos@2")
    assert not v.success
    failed = [r for r in v.results if not r["success"]]
    assert [r["column"] for r in failed] == ["source_contract_id"]
    assert failed[0]["unexpected_count"] == 10 and failed[0]["sample"][0] == "lovematch-photos"
    ok = validate("dataset:warehouse:acme_photos", SqlTable(db_url, "acme_photos"), suite, ["acme-stock-photos", "lovematch-photos"], None)
    assert ok.success


@pytest.mark.gx
def test_missing_required_column_fails_the_column_set():
    from lineage.gate.runner import validate

    doc = load_contract(ROOT / "contracts" / "acme-stock-photos.yaml")
    suite = compile_terms(doc.terms)["acme-stock-photos.photos"]
    frame = pd.DataFrame({"photo_id": ["a"], "image_uri": ["u"], "source_contract_id": ["acme-stock-photos"]})
    v = validate("dataset:x:y", frame, suite, ["acme-stock-photos"], None)
    columns = next(r for r in v.results if r["type"] == "expect_table_columns_to_match_set")
    assert not v.success and {"license_id", "captured_at", "smiling"} <= set(columns["missing_columns"])


def test_every_expectation_names_its_contract_schema_property_and_clause():
    doc = load_contract(ROOT / "contracts" / "acme-stock-photos.yaml")
    suite = compile_terms(doc.terms)["acme-stock-photos.photos"]
    by_clause = {e["meta"]["clause"]: e for e in suite["expectations"]}
    pk = by_clause["schema[photos].properties[photo_id].primaryKey"]
    assert pk["type"] == "expect_column_values_to_be_unique" and pk["meta"]["property"] == "photo_id"
    rows = by_clause["schema[photos].quality[0] (rowCount mustBeGreaterOrEqualTo 100)"]
    assert rows["kwargs"] == {"min_value": 100, "max_value": None}
    assert rows["meta"]["threshold"] == {"metric": "rowCount", "operator": "mustBeGreaterOrEqualTo", "value": 100, "unit": "rows", "count": "observed"}
    sql = next(e for e in suite["expectations"] if e["type"] == "unexpected_rows_expectation")
    assert "{batch}" in sql["kwargs"]["unexpected_rows_query"] and "${table}" not in sql["kwargs"]["unexpected_rows_query"]
    assert all({"contract", "schema", "property", "clause", "check"} <= set(e["meta"]) for e in suite["expectations"])
    assert all(e["meta"]["contract"] == "acme-stock-photos" and e["meta"]["schema"] == "photos" for e in suite["expectations"])


def test_a_contract_with_special_categories_compiles_to_counts_only_except_provenance():
    doc = load_contract(ROOT / "contracts" / "lovematch-photos.yaml")
    suite = compile_terms(doc.terms)["lovematch-photos.photos"]
    hidden = {e["meta"]["property"] for e in suite["expectations"] if e["meta"].get("samples") is False}
    assert {"ethnicity", "latitude", "photo_id"} <= hidden and "source_contract_id" not in hidden


def test_terms_stored_before_schema_objects_were_kept_still_compile():
    """A registry row written by an older release has no `objects`: the suite falls back to what it knew."""
    from lineage.contracts.terms import ContractTerms

    doc = load_contract(ROOT / "contracts" / "acme-stock-photos.yaml")
    old = doc.terms.to_json()
    del old["objects"]
    suite = compile_terms(ContractTerms.from_json(old))["acme-stock-photos.photos"]
    kinds = {e["type"] for e in suite["expectations"]}
    assert {"expect_table_columns_to_match_set", "expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set"} <= kinds
