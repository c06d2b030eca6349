"""``lineage contracts ...`` and ``lineage gate check`` as a user runs them (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import real_tokens, principal

ROOT = Path(__file__).resolve().parents[2]
LINEAGE = str(Path(sys.executable).parent / "lineage")
ACME = str(ROOT / "contracts" / "acme-stock-photos.yaml")
LOVE = str(ROOT / "contracts" / "lovematch-photos.yaml")

# Test tokens (tests_support.real_tokens overrides the server's authentication with this table):
# the CLI sends them as bearer tokens, exactly as it sends real ones.
TOKENS = {
    "tok-requester": principal("data-requests@example.com", "requester", credential="token:requests"),
    "tok-ml-lead": principal("ml-lead@example.com", "steward", credential="token:ml-lead"),
    "tok-dpo": principal("dpo@example.com", "steward", credential="token:dpo"),
    "tok-counsel": principal("privacy-counsel@example.com", "steward", credential="token:counsel"),
    "tok-admin": principal("it-admin@example.com", "admin", credential="token:admin"),
}


@pytest.fixture
def run(settings, app):
    """Run ``lineage ARGS`` as a user would; ``token=`` sets LINEAGE_TOKEN.  The server (started
    on demand by the ``server`` fixture) is at LINEAGE_URL."""
    real_tokens(app, TOKENS)

    def _run(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
        # The environment is read at each call, so a test's monkeypatch.setenv reaches the command.
        env = {**os.environ, "LINEAGE_DATABASE_URL": settings.database_url.get_secret_value(), "LINEAGE_HOME": str(settings.home)}
        env.pop("LINEAGE_TOKEN", None)
        if token:
            env["LINEAGE_TOKEN"] = token
        return subprocess.run([LINEAGE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)

    return _run


@pytest.fixture
def server(live_server, monkeypatch):
    monkeypatch.setenv("LINEAGE_URL", live_server.url)
    return live_server


def _known_to_lineage(db) -> None:
    """The demo pipeline's lineage: the partner drops become known origins (the gate refuses unknown provenance)."""
    from lineage.events import parse_event
    from example_pipeline.sample import ml_pipeline_sample
    from lineage.store.ingest import ingest_events

    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])


@pytest.mark.slow
def test_register_approve_revoke_list_show(run, db, server):
    _known_to_lineage(db)
    r = run("contracts", "register", ACME)
    assert r.returncode == 2 and "LINEAGE_TOKEN" in r.stderr  # no token: the server refuses (401)
    r = run("contracts", "register", ACME, token="tok-requester")
    assert r.returncode == 0, r.stderr
    assert "acme-stock-photos@1  proposed" in r.stdout and "data-requests@example.com" in r.stdout
    r = run("contracts", "approve", "acme-stock-photos", token="tok-ml-lead")
    assert r.returncode == 2 and "may not approve" in r.stderr and "requester" in r.stderr
    r = run("contracts", "approve", "acme-stock-photos", "--as", "dpo@example.com", token="tok-ml-lead")
    assert r.returncode == 2 and "--as" in r.stderr  # the option is gone: nobody acts as someone else
    r = run("contracts", "approve", "acme-stock-photos", "--token", "tok-dpo")
    assert r.returncode == 0 and "approved" in r.stdout and "by dpo@example.com" in r.stdout
    r = run("gate", "check", "--job", "ml:train", "--purpose", "train_ai_system", "--input", "dataset:partner-drops:acme/photos")
    assert r.returncode == 0 and r.stdout.startswith("ALLOWED"), r.stdout + r.stderr
    r = run("contracts", "revoke", "acme-stock-photos", "--reason", "licence withdrawn", token="tok-dpo")
    assert r.returncode == 0 and "revoked" in r.stdout
    r = run("gate", "check", "--job", "ml:train", "--purpose", "train_ai_system", "--input", "dataset:partner-drops:acme/photos")
    assert r.returncode == 1 and "[revoked]" in r.stdout and "licence withdrawn" in r.stdout
    listed = json.loads(run("contracts", "list", "--json").stdout)
    assert [(c["id"], c["version"], c["status"]) for c in listed] == [("acme-stock-photos", 3, "revoked")]
    shown = run("contracts", "show", "acme-stock-photos").stdout
    assert "register" in shown and "approve" in shown and "licence withdrawn" in shown
    assert "dpo@example.com [token:dpo]" in shown and "tok-dpo" not in shown  # the credential's name, never the token


def test_bad_contract_is_refused_with_file_and_line_and_nothing_is_registered(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(ACME).read_text().replace("user.content.self_image]", "user.face]", 1))
    r = run("contracts", "register", str(bad))
    assert r.returncode == 2
    assert f"{bad}:" in r.stderr and "user.face" in r.stderr and "nothing was registered" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("contracts", "list")
    assert "no contracts registered" in r.stdout


def test_gate_check_with_nothing_registered_blocks(run, db):
    args = ("gate", "check", "--job", "ml:train", "--purpose", "train_ai_system", "--input", "partner-drops:lovematch/photos")
    r = run(*args)
    assert r.returncode == 1 and "[unknown_provenance]" in r.stdout  # nothing records where it came from
    _known_to_lineage(db)
    r = run(*args)
    assert r.returncode == 1 and "[no_contract]" in r.stdout  # a known origin, but no contract covers it


def test_compile_check(run):
    r = run("contracts", "compile", "--check")
    assert r.returncode == 0 and "current" in r.stdout


@pytest.mark.gx
@pytest.mark.slow
def test_gate_check_validates_data_files(run, db, tmp_path, server):
    _known_to_lineage(db)
    from example_pipeline.drops import generate_records
    from example_pipeline.pipeline import PARTNERS

    assert run("contracts", "register", ACME, token="tok-requester").returncode == 0
    assert run("contracts", "approve", "acme-stock-photos", token="tok-dpo").returncode == 0
    # the demo's drop: what the contract states (types, keys, ranges, row count) holds for it
    frame = generate_records(PARTNERS["acme"])
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    frame.to_csv(good, index=False)
    frame.assign(latitude=52.5).to_csv(bad, index=False)  # a silent location column
    args = ["gate", "check", "--job", "ml:train", "--purpose", "train_ai_system", "--input", "dataset:partner-drops:acme/photos"]
    r = run(*args, "--data", f"dataset:partner-drops:acme/photos={good}")
    assert r.returncode == 0 and "validation acme-stock-photos.photos" in r.stdout, r.stdout + r.stderr
    r = run(*args, "--data", f"partner-drops:acme/photos={bad}")
    assert r.returncode == 1 and "[expectation_failed]" in r.stdout and "latitude" in r.stdout


def test_duplicate_key_is_refused_with_file_line_and_path(run, tmp_path):
    text = (ROOT / "contracts" / "lovematch-photos.yaml").read_text()
    prohibited = "    value: [train_ai_system, third_party_sharing]\n"
    text = text.replace(prohibited, prohibited + "    value: [third_party_sharing]\n", 1)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s == "    value: [third_party_sharing]")
    bad = tmp_path / "lovematch.yaml"
    bad.write_text(text)
    r = run("contracts", "register", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{bad}:{line}: customProperties[7].value: duplicate key `value`" in r.stderr
    assert "no contracts registered" in run("contracts", "list").stdout


def test_oversized_contract_is_refused_naming_the_file(run, tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    big.write_text(Path(ACME).read_text() + "#" * 4096 + "\n")
    monkeypatch.setenv("LINEAGE_MAX_CONTRACT_BYTES", "4096")
    r = run("contracts", "register", str(big))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {big}: $: the document is more than 4096 bytes") and "LINEAGE_MAX_CONTRACT_BYTES" in r.stderr


def test_names_and_reasons_cannot_drive_the_terminal(run, server):
    assert run("contracts", "register", ACME, token="tok-requester").returncode == 0
    r = run("contracts", "revoke", "acme-stock-photos", "--reason", "gone\x1b[2J\nFORGED LINE", token="tok-dpo")
    assert r.returncode == 0, r.stderr
    shown = run("contracts", "show", "acme-stock-photos").stdout
    assert "\x1b" not in shown and "gone\\x1b[2J\\x0aFORGED LINE" in shown
    assert not any(line.startswith("FORGED") for line in shown.splitlines())


def test_four_eyes_and_declared_ties_from_the_cli(run, server):
    assert run("contracts", "register", LOVE, token="tok-requester").returncode == 0
    r = run("governance", "ties", "add", "dpo@example.com", "LoveMatch Inc.", "--kind", "investment", token="tok-dpo")
    assert r.returncode == 2 and "admin" in r.stderr  # a steward cannot record (or clear) ties
    r = run("governance", "ties", "add", "dpo@example.com", "LoveMatch Inc.", "--kind", "investment", "--json", token="tok-admin")
    assert r.returncode == 0, r.stderr
    tie = json.loads(r.stdout)
    r = run("contracts", "approve", "lovematch-photos", token="tok-dpo")
    assert r.returncode == 2 and "has a declared investment tie to `LoveMatch Inc.`, the contract's provider" in r.stderr
    listed = run("governance", "ties", "list", token="tok-admin").stdout
    assert "dpo@example.com  investment tie to  LoveMatch Inc." in listed
    assert run("governance", "ties", "revoke", str(tie["id"]), "--reason", "shares sold", token="tok-admin").returncode == 0
    assert "no declared ties" in run("governance", "ties", "list", token="tok-admin").stdout
    assert "REVOKED" in run("governance", "ties", "list", "--all", token="tok-admin").stdout

    r = run("contracts", "approve", "lovematch-photos", token="tok-dpo")
    assert r.returncode == 0 and "proposed" in r.stdout and "one more independent steward" in r.stdout
    r = run("contracts", "approve", "lovematch-photos", token="tok-dpo")
    assert r.returncode == 2 and "already approved" in r.stderr
    r = run("contracts", "approve", "lovematch-photos", token="tok-counsel")
    assert r.returncode == 0 and "lovematch-photos@3  approved" in r.stdout


def test_namespace_owners_from_the_cli(run, server, db):
    _known_to_lineage(db)
    r = run("governance", "owners", "add", "ml-pipeline", "DPO@example.com", "--json", token="tok-admin")
    assert r.returncode == 0, r.stderr
    owner = json.loads(r.stdout)
    assert owner["owner"] == "dpo@example.com"
    assert "ml-pipeline  owned by  dpo@example.com" in run("governance", "owners", "list", token="tok-admin").stdout
    assert run("contracts", "register", ACME, token="tok-requester").returncode == 0
    r = run("contracts", "approve", "acme-stock-photos", token="tok-dpo")
    assert r.returncode == 2 and "registered owner of job `ml-pipeline:" in r.stderr
    assert run("governance", "owners", "revoke", str(owner["id"]), "--reason", "moved team", token="tok-admin").returncode == 0
    assert run("contracts", "approve", "acme-stock-photos", token="tok-dpo").returncode == 0


def test_writes_without_a_reachable_server_fail_clearly(run, monkeypatch):
    monkeypatch.setenv("LINEAGE_URL", "http://127.0.0.1:18899")  # nothing listens there (this helper's own range)
    r = run("contracts", "approve", "acme-stock-photos", token="tok-dpo")
    assert r.returncode == 2 and "cannot reach the lineage server at http://127.0.0.1:18899" in r.stderr
    assert "Traceback" not in r.stderr and "tok-dpo" not in r.stderr
