"""``lineage audit ...`` as an operator runs it: a subprocess, settings from the environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import psycopg

from lineage.audit.seal import seal_all

LINEAGE = [sys.executable, "-m", "lineage.cli", "audit"]


def _run(args, env):
    """``lineage audit ARGS`` with ``env`` over this environment (a None value removes the variable)."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run(LINEAGE + args, env=merged, capture_output=True, text=True, timeout=120)


def _env(settings, role_urls):
    return {"LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": role_urls["app"],
            "LINEAGE_MIGRATION_DATABASE_URL": role_urls["owner"]}


def test_checkpoint_verify_export_and_verify_bundle_with_no_database(filled, settings, role_urls, tmp_path):
    env = _env(settings, role_urls)
    done = _run(["checkpoint"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["block"] == 2
    key = settings.home / "audit" / "signing-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in (settings.home / "audit" / "checkpoints").iterdir()] and (settings.home / "audit" / "signing-key.pub").exists()

    done = _run(["verify"], env)
    assert done.returncode == 0 and done.stdout.startswith("OK:"), done.stdout + done.stderr

    done = _run(["export", str(tmp_path / "bundle")], env)
    assert done.returncode == 0, done.stderr
    # A third party: no database (the URL points nowhere), no server, another home.
    offline = {"LINEAGE_HOME": str(tmp_path / "elsewhere"), "LINEAGE_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
               "LINEAGE_MIGRATION_DATABASE_URL": None}
    done = _run(["verify-bundle", str(tmp_path / "bundle"), "--public-key", str(settings.home / "audit" / "signing-key.pub")], offline)
    assert done.returncode == 0 and done.stdout.startswith("OK:"), done.stdout + done.stderr
    assert not (tmp_path / "elsewhere").exists()

    records = tmp_path / "bundle" / "records" / "principal_ties.jsonl"
    rows = [json.loads(x) for x in records.read_text().splitlines()]
    rows[0]["kind"] = "other"
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = _run(["verify-bundle", str(tmp_path / "bundle")], offline)
    assert done.returncode == 1
    assert f"altered: principal_ties (id={rows[0]['id']})" in done.stderr


def test_verify_fails_and_names_the_record_the_owner_changed(filled, settings, role_urls):
    env = _env(settings, role_urls)
    assert _run(["checkpoint"], env).returncode == 0
    with psycopg.connect(role_urls["owner"], autocommit=True) as owner:
        owner.execute("ALTER TABLE role_grants DISABLE TRIGGER USER")
        gid = owner.execute("UPDATE role_grants SET role = 'admin' RETURNING id").fetchone()[0]
        owner.execute("ALTER TABLE role_grants ENABLE TRIGGER USER")
    done = _run(["verify"], env)
    assert done.returncode == 1
    assert f"first: altered: role_grants (id={gid})" in done.stderr
    report = json.loads(_run(["verify", "--json"], env).stdout)
    assert report["ok"] is False and report["first"]["table"] == "role_grants" and report["first"]["key"] == {"id": gid}


def test_seal_seals_what_was_committed(db, settings, role_urls):
    with db.connection() as conn:
        conn.execute("INSERT INTO role_grants (principal, role, action, actor) VALUES ('a@example.com', 'viewer', 'grant', 'tests')")
    done = _run(["seal"], _env(settings, role_urls))
    assert done.returncode == 0 and "sealed 1 block(s)" in done.stdout, done.stdout + done.stderr
    with db.connection() as conn:
        assert seal_all(conn) == []


def test_a_configured_key_file_that_is_missing_is_an_error_not_a_new_key(filled, settings, role_urls, tmp_path):
    env = {**_env(settings, role_urls), "LINEAGE_AUDIT_KEY_FILE": str(tmp_path / "missing-key")}
    done = _run(["checkpoint"], env)
    assert done.returncode == 2 and done.stderr.startswith("error: LINEAGE_AUDIT_KEY_FILE")
    assert "Traceback" not in done.stderr and not (tmp_path / "missing-key").exists()


def test_a_key_readable_by_others_is_refused(filled, settings, role_urls):
    env = _env(settings, role_urls)
    assert _run(["checkpoint"], env).returncode == 0
    (settings.home / "audit" / "signing-key").chmod(0o644)
    done = _run(["checkpoint"], env)
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_verify_bundle_on_something_else_is_one_error_line(tmp_path):
    (tmp_path / "x").mkdir()
    done = _run(["verify-bundle", str(tmp_path / "x")], {})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error:")


def test_export_with_a_bad_time_names_the_option(settings, role_urls, tmp_path):
    done = _run(["export", str(tmp_path / "b"), "--from", "yesterday"], _env(settings, role_urls))
    assert done.returncode == 2 and "--from" in done.stderr


def test_an_auditor_verifies_and_exports_with_the_reader_role(filled, settings, role_urls, tmp_path):
    """The reader database role (SELECT only) is enough for verify and export; no migration URL."""
    assert _run(["checkpoint"], _env(settings, role_urls)).returncode == 0
    reader = {"LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": role_urls["reader"], "LINEAGE_MIGRATION_DATABASE_URL": None}
    done = _run(["verify"], reader)
    assert done.returncode == 0 and done.stdout.startswith("OK:"), done.stdout + done.stderr
    done = _run(["export", str(tmp_path / "b")], reader)
    assert done.returncode == 0, done.stderr
    assert _run(["verify-bundle", str(tmp_path / "b")], {}).returncode == 0
    with filled.connection() as conn:  # something to seal: the reader may not write the ledger
        conn.execute("INSERT INTO role_grants (principal, role, action, actor) VALUES ('a@example.com', 'viewer', 'grant', 'tests')")
    done = _run(["seal"], reader)
    assert done.returncode != 0 and "Traceback" not in done.stderr and done.stderr.startswith("error:")
