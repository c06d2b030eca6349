"""Evidence bundles: exported from the store, verified with no database at all.

An auditor exports a bundle, a third party verifies it offline.  Editing a record, dropping
one, adding one, touching a leaf, or trusting the wrong key is caught and, for records, named.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lineage.audit import checkpoint as cp
from lineage.audit.bundle import export, verify_bundle
from lineage.audit.seal import seal_all
from lineage.errors import ConfigError


@pytest.fixture
def signed(filled, tmp_path):
    """The filled store, checkpointed with a key whose public half is known: (db, paths, key)."""
    paths = cp.AuditPaths(tmp_path / "key" / "signing-key", tmp_path / "checkpoints", False)
    key = cp.load_or_create_key(paths)
    with filled.connection() as conn:
        cp.write(paths, cp.make(conn, key))
    return filled, paths, key


def _export(db, paths, folder: Path, start=None, end=None) -> dict:
    with db.connection() as conn:
        return export(conn, folder, paths.checkpoint_dir, cp.public_path(paths).read_bytes(), start, end)


def test_an_exported_bundle_verifies_offline(signed, tmp_path):
    db, paths, key = signed
    manifest = _export(db, paths, tmp_path / "bundle")
    report = verify_bundle(tmp_path / "bundle", cp.public_path(paths).read_bytes())
    assert report.ok, report.summary()
    assert report.checkpoints == 1 and report.erased == 1 and report.records > 20
    assert report.hash_only == 1  # the revoked token's first version: superseded by its revocation
    assert {p.name for p in (tmp_path / "bundle").iterdir()} == {
        "README.md", "manifest.json", "blocks.jsonl", "entries.jsonl", "records", "checkpoints", "public-key.pem"}
    assert manifest["withheld"] and set(manifest["withheld"].values()) == {"erased", "superseded"}


def _first_line(path: Path) -> tuple[list[str], dict]:
    lines = path.read_text().splitlines()
    return lines, json.loads(lines[-1])


def test_a_record_edited_after_export_is_named(signed, tmp_path):
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    path = tmp_path / "b" / "records" / "contract_versions.jsonl"
    lines, row = _first_line(path)
    row["status"] = "approved"
    path.write_text("\n".join(lines[:-1] + [json.dumps(row)]) + "\n")
    report = verify_bundle(tmp_path / "b")
    assert [(p.kind, p.table, p.key) for p in report.problems] == [
        ("altered", "contract_versions", {"contract_id": row["contract_id"], "version": row["version"]})]


def test_a_record_removed_from_the_bundle_is_named(signed, tmp_path):
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    path = tmp_path / "b" / "records" / "gate_decisions.jsonl"
    lines, row = _first_line(path)
    path.write_text("\n".join(lines[:-1]) + ("\n" if lines[:-1] else ""))
    report = verify_bundle(tmp_path / "b")
    assert [(p.kind, p.table, p.key) for p in report.problems] == [("deleted", "gate_decisions", {"id": row["id"]})]


def test_a_record_added_to_the_bundle_is_named(signed, tmp_path):
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    path = tmp_path / "b" / "records" / "role_grants.jsonl"
    lines, row = _first_line(path)
    row["id"] += 1000
    row["role"] = "admin"
    path.write_text("\n".join(lines + [json.dumps(row)]) + "\n")
    report = verify_bundle(tmp_path / "b")
    assert [(p.kind, p.table, p.key) for p in report.problems] == [("inserted", "role_grants", {"id": row["id"]})]


def test_an_altered_leaf_breaks_its_block(signed, tmp_path):
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    path = tmp_path / "b" / "entries.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[3])
    entry["leaf"] = "00" * 32
    lines[3] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    report = verify_bundle(tmp_path / "b")
    assert ("block", entry["block"]) in [(p.kind, p.block) for p in report.problems]


def test_the_wrong_public_key_is_refused(signed, tmp_path):
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    other = cp.public_pem(Ed25519PrivateKey.generate().public_key())
    report = verify_bundle(tmp_path / "b", other)
    kinds = [p.kind for p in report.problems]
    assert kinds and set(kinds) == {"checkpoint"}
    assert any("no checkpoint signed by the trusted key" in p.detail for p in report.problems)


def test_a_bundle_edited_and_re_signed_with_another_key_fails_against_the_trusted_key(signed, tmp_path):
    """The forger replaces public-key.pem and the checkpoint: only an independently obtained key catches it."""
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    forger = Ed25519PrivateKey.generate()
    blocks = [json.loads(x) for x in (tmp_path / "b" / "blocks.jsonl").read_text().splitlines()]
    for f in (tmp_path / "b" / "checkpoints").iterdir():
        f.write_text(json.dumps(cp.sign(forger, blocks[-1]["seq"], bytes.fromhex(blocks[-1]["hash"]), blocks[-1]["last"])))
    (tmp_path / "b" / "public-key.pem").write_bytes(cp.public_pem(forger.public_key()))
    assert verify_bundle(tmp_path / "b").ok  # consistent with itself...
    assert not verify_bundle(tmp_path / "b", cp.public_path(paths).read_bytes()).ok  # ...not with the trusted key


def test_a_bundle_without_a_checkpoint_at_its_end_fails(filled, tmp_path):
    paths = cp.AuditPaths(tmp_path / "k" / "signing-key", tmp_path / "none", False)
    cp.load_or_create_key(paths)
    _export(filled, paths, tmp_path / "b")
    report = verify_bundle(tmp_path / "b")
    assert [p.kind for p in report.problems] == ["checkpoint"]


def test_a_time_range_exports_its_blocks_and_links_to_a_later_checkpoint(signed, tmp_path):
    db, paths, key = signed
    with db.connection() as conn:
        sealed = [r[0] for r in conn.execute("SELECT sealed_at FROM ledger_blocks ORDER BY seq")]
        conn.execute("INSERT INTO role_grants (principal, role, action, actor) VALUES ('late@example.com', 'viewer', 'grant', 'tests')")
    with db.connection() as conn:
        seal_all(conn)
    with db.connection() as conn:
        cp.write(paths, cp.make(conn, key))
    manifest = _export(db, paths, tmp_path / "b", start=sealed[1], end=sealed[1])
    assert manifest["blocks"] == [2, 2] and manifest["newestBlock"] == 3
    report = verify_bundle(tmp_path / "b")
    assert report.ok, report.summary()
    assert report.blocks == 1 and report.checkpoints == 2  # heads 2 (the range itself) and 3 (linked by headers)


def test_export_refuses_a_directory_that_is_not_empty(signed, tmp_path):
    db, paths, _ = signed
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep me")
    with pytest.raises(ConfigError):
        _export(db, paths, tmp_path / "b")


def test_a_range_with_no_block_is_refused(signed, tmp_path):
    db, paths, _ = signed
    with pytest.raises(ConfigError):
        _export(db, paths, tmp_path / "b", start=datetime(2999, 1, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize("edit", ["text", "not text"])
def test_an_event_payload_edited_after_export_is_named(signed, tmp_path, edit):
    db, paths, _ = signed
    _export(db, paths, tmp_path / "b")
    path = tmp_path / "b" / "records" / "raw_events.jsonl"
    lines, row = _first_line(path)
    assert isinstance(row["payload"], str) and json.loads(row["payload"])["eventType"]  # the event, as its text
    if edit == "text":
        row["payload"] = row["payload"].replace(json.loads(row["payload"])["eventType"], "ABORT", 1)
    else:
        row["payload"] = json.loads(row["payload"])  # the same event as an object: not what was hashed
    path.write_text("\n".join(lines[:-1] + [json.dumps(row)]) + "\n")
    report = verify_bundle(tmp_path / "b")
    assert [(p.kind, p.table, p.key) for p in report.problems] == [("altered", "raw_events", {"id": row["id"]})]
