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
