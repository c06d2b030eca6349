"""Retention (``lineage maintain retain``): old partitions archived with their ledger proofs, then
dropped; ``lineage audit verify`` still passes, knows them as retained, and with the archive
re-hashes every one of them; a tampered archive is caught; a crash between archive and drop
is completed by running again."""

from __future__ import annotations

import gzip
import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from lineage.audit.seal import seal_all
from lineage.audit.verify import verify
from lineage.errors import ConfigError
from lineage.events import parse_event
from lineage.maintain.partitions import list_partitions
from lineage.maintain.retention import retain
from example_pipeline.sample import ml_pipeline_sample
from lineage.store.ingest import _raw_row, ingest_events, rebuild

OLD = "raw_events_before_0014"  # the partition the template's migration attached: everything before this month


def _this_month() -> date:
    return datetime.now(timezone.utc).date().replace(day=1)


@pytest.fixture
def owner(role_urls):
    with psycopg.connect(role_urls["owner"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def history(db, owner):
    """Events recorded 40 and 70 days ago (planted by the owner: the application cannot choose
    recorded_at) in the old partition, events recorded now in this month's; all sealed."""
    events = [parse_event(e) for e in ml_pipeline_sample()]
    old, new = events[:6], events[6:]
    now = datetime.now(timezone.utc)
    for n, ev in enumerate(old):
        at = now.replace(day=1) - timedelta(days=40 if n % 2 else 70)
        raw_id = owner.execute("INSERT INTO event_keys (event_key, raw_id, recorded_at) VALUES (%s, nextval('raw_events_id_seq'), %s)"
                               " RETURNING raw_id", (ev.key, at)).fetchone()[0]
        owner.execute("INSERT INTO raw_events (id, event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer,"
                      " payload, normalizations, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                      (raw_id, *_raw_row(ev), at))
    with db.connection() as conn:
        ingest_events(conn, new)
    with db.connection() as conn:
        rebuild(conn)  # the derived graph, old events included
    with db.connection() as conn:
        seal_all(conn)
    return old, new


def _verify(db, archive: Path | None = None):
    with db.connection() as conn:
        return verify(conn, archive=archive)


def test_retention_archives_and_drops_the_old_partition_and_the_ledger_still_verifies(db, owner, role_urls, history, tmp_path):
    old, new = history
    done = retain(role_urls["owner"], _this_month(), tmp_path)
    assert [(r.partition, r.rows) for r in done] == [(OLD, len(old))]
    assert OLD not in [p[0] for p in list_partitions(owner)]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == len(new)
        row = conn.execute("SELECT partition_name, row_count, archive FROM retentions").fetchone()
    assert row == (OLD, len(old), f"raw_events/{OLD}.jsonl.gz")
    report = _verify(db)
    assert report.ok and report.retained == len(old), report.summary()
    with db.connection() as conn:
        seal_all(conn)  # the retention record itself enters the ledger
    with_archive = _verify(db, tmp_path)
    assert with_archive.ok, with_archive.summary()
    assert with_archive.records == report.records + 1 + len(old)  # + the retention record, + every archived event re-hashed
    # The keys stay: an archived event sent again is still a duplicate.
    with db.connection() as conn:
        assert ingest_events(conn, old[:1]).duplicates == 1
    # Running again finds nothing left to retain.
    assert retain(role_urls["owner"], _this_month(), tmp_path) == []


def _rewrite(path: Path, change) -> None:
    lines = [json.loads(line) for line in gzip.open(path, "rt")]
    lines = change(lines)
    with gzip.open(path, "wt") as out:
        out.writelines(json.dumps(line) + "\n" for line in lines)


def test_a_tampered_archive_is_caught_and_the_altered_record_named(db, role_urls, history, tmp_path):
    retain(role_urls["owner"], _this_month(), tmp_path)
    path = tmp_path / "raw_events" / f"{OLD}.jsonl.gz"
    victim = {}

    def forge(lines):
        victim["id"] = lines[1]["key"][0]
        lines[1]["record"]["producer"] = "https://forged.example"
        return lines

    _rewrite(path, forge)
    report = _verify(db, tmp_path)
    kinds = [(p.kind, p.key) for p in report.problems]
    assert ("retention", None) in kinds and ("altered", {"id": victim["id"]}) in kinds
    assert len(kinds) == 2


def test_a_record_removed_from_the_archive_is_named_deleted(db, role_urls, history, tmp_path):
    retain(role_urls["owner"], _this_month(), tmp_path)
    path = tmp_path / "raw_events" / f"{OLD}.jsonl.gz"
    gone = {}

    def drop_first(lines):
        gone["id"] = lines[0]["key"][0]
        return lines[1:]

    _rewrite(path, drop_first)
    report = _verify(db, tmp_path)
    assert ("deleted", {"id": gone["id"]}) in [(p.kind, p.key) for p in report.problems]


def test_a_missing_archive_is_reported(db, role_urls, history, tmp_path):
    retain(role_urls["owner"], _this_month(), tmp_path)
    (tmp_path / "raw_events" / f"{OLD}.jsonl.gz").unlink()
    report = _verify(db, tmp_path)
    assert [p.kind for p in report.problems] == ["retention"]
    assert _verify(db).ok  # without the archive: the ledgered retention accounts for the rows


def test_rows_deleted_by_the_owner_without_a_retention_are_still_caught(db, owner, history):
    """Retention is no loophole: a gone old row that no retention names is *deleted*."""
    victim = owner.execute(f"SELECT min(id) FROM {OLD}").fetchone()[0]
    owner.execute(f"ALTER TABLE {OLD} DISABLE TRIGGER USER")
    owner.execute(f"DELETE FROM {OLD} WHERE id = %s", (victim,))
    report = _verify(db)
    assert [(p.kind, p.key) for p in report.problems] == [("deleted", {"id": victim})]


def test_a_crash_between_archive_and_drop_leaves_everything_in_place_and_a_rerun_completes(db, owner, role_urls, history, tmp_path):
    old, _ = history

    def crash(partition, path):
        assert path.exists()
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        retain(role_urls["owner"], _this_month(), tmp_path, after_archive=crash)
    assert OLD in [p[0] for p in list_partitions(owner)]
    assert owner.execute("SELECT count(*) FROM retentions").fetchone()[0] == 0
    assert _verify(db).ok
    done = retain(role_urls["owner"], _this_month(), tmp_path)
    assert [(r.partition, r.rows) for r in done] == [(OLD, len(old))]
    with db.connection() as conn:
        seal_all(conn)
    report = _verify(db, tmp_path)
    assert report.ok and report.retained == len(old), report.summary()


def test_a_killed_retention_is_completed_by_running_again(db, owner, role_urls, history, tmp_path):
    """The process dies (SIGKILL) after writing the archive, before the drop commits."""
    import subprocess

    code = (
        "import os, signal, sys\n"
        "from datetime import date\n"
        "from pathlib import Path\n"
        "from lineage.maintain.retention import retain\n"
        "retain(sys.argv[1], date.fromisoformat(sys.argv[2]), Path(sys.argv[3]),"
        " after_archive=lambda *_: os.kill(os.getpid(), signal.SIGKILL))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, role_urls["owner"], _this_month().isoformat(), str(tmp_path)])
    assert proc.returncode == -9
    assert OLD in [p[0] for p in list_partitions(owner)]
    assert retain(role_urls["owner"], _this_month(), tmp_path)[0].partition == OLD
    with db.connection() as conn:
        seal_all(conn)
    assert _verify(db, tmp_path).ok


def test_retention_keeps_the_current_month(role_urls, tmp_path):
    with pytest.raises(ConfigError):
        retain(role_urls["owner"], _this_month() + timedelta(days=1), tmp_path)


def test_the_application_role_cannot_record_a_retention(db, db_url):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(db_url) as conn:
            conn.execute("INSERT INTO retentions (tbl, partition_name, range_to, ids, row_count, archive, archive_sha256)"
                         " VALUES ('raw_events', 'x', now(), '{[1,100)}', 99, 'x', repeat('a', 64))")


def test_the_graph_rebuilds_after_retention_from_what_is_left(db, role_urls, history, tmp_path):
    _, new = history
    retain(role_urls["owner"], _this_month(), tmp_path)
    with db.connection() as conn:
        assert rebuild(conn) == len(new)


def test_maintain_retain_from_the_command_line(role_urls, history, monkeypatch, tmp_path, capsys):
    from lineage import cli

    monkeypatch.setenv("LINEAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LINEAGE_DATABASE_URL", role_urls["app"])
    monkeypatch.setenv("LINEAGE_MIGRATION_DATABASE_URL", role_urls["owner"])
    monkeypatch.setattr(sys, "argv", ["lineage", "maintain", "retain", "--before", "not-a-date", "--archive", str(tmp_path)])
    with pytest.raises(SystemExit) as bad:
        cli.main()
    assert bad.value.code == 2 and "--before" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["lineage", "maintain", "retain", "--before", _this_month().isoformat(), "--archive", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    assert f"retained {OLD}: 6 event(s)" in capsys.readouterr().out


def test_an_operator_retains_and_verifies_with_the_archive_against_a_checkpoint_signed_before(role_urls, history, tmp_path, db):
    """As run in a deployment: subprocesses, settings from the environment; a checkpoint signed
    before the retention still verifies after it, and an edited archive fails the verification."""
    import os
    import subprocess

    env = {**os.environ, "LINEAGE_HOME": str(tmp_path / "home"), "LINEAGE_DATABASE_URL": role_urls["app"],
           "LINEAGE_MIGRATION_DATABASE_URL": role_urls["owner"]}

    def lineage(*args):
        return subprocess.run([sys.executable, "-m", "lineage.cli", *args], env=env, capture_output=True, text=True, timeout=120)

    assert lineage("audit", "checkpoint").returncode == 0
    archive = tmp_path / "archive"
    done = lineage("maintain", "retain", "--before", _this_month().isoformat(), "--archive", str(archive))
    assert done.returncode == 0, done.stderr
    with db.connection() as conn:
        seal_all(conn)
    done = lineage("audit", "verify", "--archive", str(archive))
    assert done.returncode == 0 and done.stdout.startswith("OK:") and "6 retained" in done.stdout, done.stdout + done.stderr
    _rewrite(archive / "raw_events" / f"{OLD}.jsonl.gz", lambda lines: lines[:-1])
    done = lineage("audit", "verify", "--archive", str(archive))
    assert done.returncode == 1 and "retention" in done.stdout + done.stderr


def test_an_evidence_bundle_after_retention_names_the_dropped_records_retained_and_verifies(db, role_urls, history, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lineage.audit import checkpoint as cp
    from lineage.audit.bundle import export, verify_bundle

    old, _ = history
    key = Ed25519PrivateKey.generate()
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    with db.connection() as conn:
        body = cp.make(conn, key)
    (checkpoints / "c1.json").write_text(json.dumps(body))
    retain(role_urls["owner"], _this_month(), tmp_path / "archive")
    with db.connection() as conn:
        manifest = export(conn, tmp_path / "bundle", checkpoints, cp.public_pem(key.public_key()))
    assert list(manifest["withheld"].values()).count("retained") == len(old)
    report = verify_bundle(tmp_path / "bundle")
    assert report.ok, report.summary()


def test_a_long_read_makes_retention_give_up_cleanly_and_a_rerun_completes(db, owner, role_urls, history, tmp_path, monkeypatch):
    from lineage.errors import StoreBusy
    from lineage.maintain import retention

    old, _ = history
    monkeypatch.setattr(retention, "DROP_LOCK_TIMEOUT", "200ms")
    with psycopg.connect(role_urls["app"]) as reader:
        reader.execute("SELECT count(*) FROM raw_events").fetchone()  # its lock lasts until the transaction ends
        with pytest.raises(StoreBusy):
            retain(role_urls["owner"], _this_month(), tmp_path)
        fresh = parse_event({**ml_pipeline_sample()[0], "eventTime": "2031-01-01T00:00:00Z"})
        with db.connection() as conn:  # ingest is not held up by the retention that gave up
            assert ingest_events(conn, [fresh]).stored == 1
    assert OLD in [p[0] for p in list_partitions(owner)]
    assert owner.execute("SELECT count(*) FROM retentions").fetchone()[0] == 0
    assert [r.rows for r in retain(role_urls["owner"], _this_month(), tmp_path)] == [len(old)]


@pytest.mark.parametrize("forged_key", ['"x"', '[1.5]', '["7"]', '{"id": 1}'])
def test_a_forged_ledger_key_is_a_problem_not_a_crash_after_retention(db, owner, role_urls, history, tmp_path, forged_key):
    retain(role_urls["owner"], _this_month(), tmp_path)
    seq = owner.execute("SELECT max(seq) + 1 FROM ledger_entries").fetchone()[0]
    owner.execute("ALTER TABLE ledger_entries DISABLE TRIGGER USER")
    owner.execute("INSERT INTO ledger_entries (seq, block, tbl, pk, leaf, xact) VALUES (%s, 1, 'raw_events', %s::jsonb, %s, '1')",
                  (seq, forged_key, bytes(32)))
    owner.execute("ALTER TABLE ledger_entries ENABLE TRIGGER USER")
    for archive in (None, tmp_path):
        report = _verify(db, archive)
        assert not report.ok and report.retained == 6


def test_the_archive_is_written_in_the_ledger_s_time_zone_whatever_the_session_s(db, role_urls, history, tmp_path):
    from urllib.parse import quote

    url = role_urls["owner"]
    url += ("&" if "?" in url else "?") + "options=" + quote("-c TimeZone=Asia/Kolkata", safe="")
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW TimeZone").fetchone()[0] == "Asia/Kolkata"
    retain(url, _this_month(), tmp_path)
    with db.connection() as conn:
        seal_all(conn)
    report = _verify(db, tmp_path)
    assert report.ok and report.retained == 6, report.summary()


def test_a_partition_with_events_waiting_for_derivation_is_not_retained(db, owner, role_urls, history, tmp_path):
    """Raw-first ingest queues events for derivation (migration 0013's ``derive_queue``); an
    event still queued keeps its partition until it is derived."""
    owner.execute("CREATE TABLE IF NOT EXISTS derive_queue (id bigserial PRIMARY KEY, raw_ids bigint[] NOT NULL,"
                  " enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp())")
    waiting = owner.execute(f"SELECT max(id) FROM {OLD}").fetchone()[0]
    queued = owner.execute("INSERT INTO derive_queue (raw_ids) VALUES (ARRAY[%s::bigint]) RETURNING id", (waiting,)).fetchone()[0]
    with pytest.raises(ConfigError, match="not derived yet"):
        retain(role_urls["owner"], _this_month(), tmp_path)
    assert OLD in [p[0] for p in list_partitions(owner)]
    owner.execute("DELETE FROM derive_queue WHERE id = %s", (queued,))  # derived
    assert [r.partition for r in retain(role_urls["owner"], _this_month(), tmp_path)] == [OLD]


def test_dataset_versions_made_by_retained_events_are_still_listed(db, role_urls, history, tmp_path):
    from lineage.store import reads

    with db.connection() as conn:
        ns, name, version = conn.execute(
            "SELECT n.name, d.name, v.version FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
            " JOIN namespaces n ON n.id = d.namespace_id JOIN raw_events r ON r.id = v.raw_event_id"
            f" WHERE r.tableoid = '{OLD}'::regclass LIMIT 1").fetchone()
        before = reads.list_dataset_versions(conn, ns, name, 100, 0)
    retain(role_urls["owner"], _this_month(), tmp_path)
    with db.connection() as conn:
        after = reads.list_dataset_versions(conn, ns, name, 100, 0)
        assert [v["version"] for v in after["versions"]] == [v["version"] for v in before["versions"]]
        assert after["totalCount"] == before["totalCount"]
        assert reads.get_dataset_version(conn, ns, name, version)["version"] == version
