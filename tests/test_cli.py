"""The `lineage` command, run as a user runs it: a real process, a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from example_pipeline.sample import ml_pipeline_sample

LINEAGE = [sys.executable, "-m", "lineage.cli"]


def _run(args, settings, **kw):
    env = {**os.environ, "LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": settings.database_url.get_secret_value()}
    env.update(kw.pop("env", {}))
    return subprocess.run(LINEAGE + args, env=env, capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_the_commands(settings):
    out = _run(["--help"], settings).stdout
    for command in ("serve", "ingest", "upstream", "downstream", "db"):
        assert command in out


def test_ingest_file_directly_then_query(tmp_path, settings):
    f = tmp_path / "events.ndjson"
    f.write_text("\n".join(json.dumps(e) for e in ml_pipeline_sample()) + "\n")
    r = _run(["ingest", str(f), "--direct"], settings)
    assert r.returncode == 0, r.stderr
    assert "8 stored, 0 duplicate, 0 rejected" in r.stderr
    again = _run(["ingest", str(f), "--direct"], settings)
    assert "0 stored, 8 duplicate, 0 rejected" in again.stderr
    up = _run(["upstream", "dataset:models:face-embedder", "--json"], settings)
    ids = {n["id"] for n in json.loads(up.stdout)["nodes"]}
    assert "dataset:partner-drops:lovematch/photos" in ids
    tree = _run(["downstream", "dataset:partner-drops:lovematch/photos"], settings)
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("dataset:partner-drops:lovematch/photos")
    assert lines[-1].strip().endswith("dataset:models:face-embedder")  # the tree ends at the model
    table = _run(["downstream", "dataset:partner-drops:lovematch/photos", "--table"], settings)
    assert "from" in table.stdout and "face-embedder" in table.stdout


def test_ingest_over_http_reports_bad_lines_by_file_and_line(tmp_path, settings, live_server, tokens):
    events = ml_pipeline_sample()
    lines = [json.dumps(e) for e in events[:3]] + ["{oops", json.dumps(dict(events[3], eventType="DONE"))]
    f = tmp_path / "mixed.ndjson"
    f.write_text("\n".join(lines) + "\n")
    r = _run(["ingest", str(f), "--url", live_server.url, "--batch-size", "2"], settings, env={"LINEAGE_TOKEN": tokens("cli", "emitter")})
    assert r.returncode == 1
    assert f"{f}:4: $: not valid JSON" in r.stderr
    assert f"{f}:5: $.eventType" in r.stderr
    assert "3 stored, 0 duplicate, 2 rejected" in r.stderr


def test_errors_are_one_line_without_traceback(tmp_path, settings):
    r = _run(["ingest", str(tmp_path / "missing.json"), "--direct"], settings)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot read") and "Traceback" not in r.stderr
    r = _run(["upstream", "dataset:nowhere:nothing"], settings)
    assert r.returncode == 2 and "dataset `nowhere:nothing` not found" in r.stderr
    r = _run(["upstream", "bogus"], settings)
    assert r.returncode == 2 and "NODE" in r.stderr and "Traceback" not in r.stderr
    r = _run(["ingest", str(tmp_path), "--url", "http://127.0.0.1:9"], settings)
    assert "Traceback" not in r.stderr


def test_db_upgrade_reports_revision(settings):
    r = _run(["db", "upgrade"], settings, env={"LINEAGE_MIGRATION_DATABASE_URL": settings.migration_database_url.get_secret_value()})
    assert r.returncode == 0 and "store at revision" in r.stdout, r.stderr


def test_db_upgrade_needs_the_owner_role(settings):
    """The application role's URL migrates nothing: without an owner URL, or given the
    application's URL as one, `db upgrade` fails with one line saying what to set."""
    r = _run(["db", "upgrade"], settings)
    assert r.returncode == 2 and "LINEAGE_MIGRATION_DATABASE_URL is unset" in r.stderr and "Traceback" not in r.stderr
    r = _run(["db", "upgrade"], settings, env={"LINEAGE_MIGRATION_DATABASE_URL": settings.database_url.get_secret_value()})
    assert r.returncode == 2 and "owner database role `lineage_owner`, not `lineage_app`" in r.stderr, r.stderr


def test_names_print_literally_never_as_markup_or_terminal_codes(tmp_path, settings):
    """Names are data from anyone who can send an event: `[/]` used to raise rich's MarkupError,
    `[bold red]...` was rendered as style and ANSI escapes reached the terminal raw."""
    base = ml_pipeline_sample()[1]
    odd = ["[/]", "[bold red]x[/bold red]", "evil\x1b[31mred"]

    def event(inputs, outputs, job, run_id):
        return dict(base, run={"runId": run_id}, job={"namespace": "t", "name": job},
                    inputs=[{"namespace": "t", "name": n} for n in inputs],
                    outputs=[{"namespace": "t", "name": n} for n in outputs])

    events = [
        event(odd[:2], [odd[2]], "[dim]job[/dim]", "01890a5d-ac96-774b-bcce-b302099a8057"),
        event([odd[2]], ["out\x9b2J\u202egnp.exe"], "second", "01890a5d-ac96-774b-bcce-b302099a8058"),
    ]
    f = tmp_path / "odd.ndjson"
    f.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    r = _run(["ingest", str(f), "--direct"], settings)
    assert r.returncode == 0 and "2 stored" in r.stderr, r.stderr
    wide = {"COLUMNS": "250"}
    outputs = [
        _run(["upstream", "dataset:t:evil\x1b[31mred"], settings, env=wide),
        _run(["upstream", "dataset:t:evil\x1b[31mred", "--table"], settings, env=wide),
        _run(["downstream", "dataset:t:[/]"], settings, env=wide),
        _run(["downstream", "dataset:t:[/]", "--table"], settings, env=wide),
    ]
    for out in outputs:
        assert out.returncode == 0 and "Traceback" not in out.stderr and "MarkupError" not in out.stderr, out.stderr
        assert "\x1b" not in out.stdout and "\x9b" not in out.stdout and "\u202e" not in out.stdout
    up_tree, up_table, down_tree, down_table = (o.stdout for o in outputs)
    for text in (up_tree, up_table):
        assert "dataset:t:[/]" in text and "dataset:t:[bold red]x[/bold red]" in text
        assert "job:t:[dim]job[/dim]" in text and "dataset:t:evil\\x1b[31mred" in text
    for text in (down_tree, down_table):
        assert "dataset:t:[/]" in text and "dataset:t:evil\\x1b[31mred" in text
        assert "dataset:t:out\\x9b2J\\u202egnp.exe" in text


def test_ingest_summary_prints_rejected_values_and_paths_literally(tmp_path, settings):
    good, bad = ml_pipeline_sample()[0], dict(ml_pipeline_sample()[1], eventType="[/]")
    f = tmp_path / "drop[bold].ndjson"
    f.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    r = _run(["ingest", str(f), "--direct"], settings, env={"COLUMNS": "250"})
    assert r.returncode == 1 and "Traceback" not in r.stderr and "MarkupError" not in r.stderr, r.stderr
    assert f"rejected {f}:2: $.eventType: Invalid enum value '[/]'" in r.stderr
    assert f"{f}: 1 stored, 0 duplicate, 1 rejected" in r.stderr


def test_a_direct_read_while_derivation_is_behind_prints_the_answer_and_exits_3(tmp_path, settings, db):
    """"What was built from this source?" must not look whole when it is not: a training run
    acknowledged but not derived yet (a worker stuck holding it) is missing from the answer, so
    the commands say so and exit 3; once derivation catches up they answer in full and exit 0."""
    import uuid

    import psycopg

    from lineage.events import parse_raw
    from lineage.samples import dataset, run_event
    from lineage.store import derive
    from lineage.store.ingest import ingest_events

    f = tmp_path / "events.ndjson"
    f.write_text("\n".join(json.dumps(e) for e in ml_pipeline_sample()) + "\n")
    assert _run(["ingest", str(f), "--direct"], settings).returncode == 0
    shadow = run_event("COMPLETE", ("shadow", "train"), str(uuid.uuid4()),
                       [dataset("partner-drops", "lovematch/photos")], [dataset("models", "shadow-model")])
    with db.connection() as conn:
        ingest_events(conn, [parse_raw(json.dumps(shadow).encode())], defer=True)  # acknowledged, queued
    stuck = psycopg.connect(settings.database_url.get_secret_value())
    try:
        assert derive._claim(stuck, None).raw_ids  # a worker holding the claim, mid-batch
        quick = {"LINEAGE_READ_WAIT": "0.5"}
        down = _run(["downstream", "dataset:partner-drops:lovematch/photos", "--json"], settings, env=quick)
        assert down.returncode == 3, down.stderr
        assert "derivation is behind" in down.stderr and "Traceback" not in down.stderr
        ids = {n["id"] for n in json.loads(down.stdout)["nodes"]}
        assert "dataset:models:face-embedder" in ids and "dataset:models:shadow-model" not in ids
        imp = _run(["impact", "dataset:partner-drops:lovematch/photos"], settings, env=quick)
        assert imp.returncode == 3 and "face-embedder" in imp.stdout and "shadow-model" not in imp.stdout
    finally:
        stuck.close()  # the stuck worker dies: its claim goes back to the queue
    down = _run(["downstream", "dataset:partner-drops:lovematch/photos", "--json"], settings)
    assert down.returncode == 0, down.stderr
    assert "dataset:models:shadow-model" in {n["id"] for n in json.loads(down.stdout)["nodes"]}
    imp = _run(["impact", "dataset:partner-drops:lovematch/photos"], settings)
    assert imp.returncode == 0 and "shadow-model" in imp.stdout
