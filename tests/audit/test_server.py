"""The server seals what it ingests, without anyone running a command."""

from __future__ import annotations

import time

from lineage.audit.verify import verify
from example_pipeline.sample import ml_pipeline_sample


def test_events_posted_to_the_server_are_sealed_in_the_background(client, db):
    r = client.post("/api/v1/lineage/batch", json=ml_pipeline_sample())
    assert r.status_code < 300, r.text
    deadline = time.monotonic() + 60  # a generous bound on waiting, not a speed assertion
    while time.monotonic() < deadline:
        with db.connection() as conn:
            queued = conn.execute("SELECT count(*) FROM ledger_queue").fetchone()[0]
            sealed = conn.execute("SELECT count(*) FROM ledger_entries WHERE tbl = 'raw_events'").fetchone()[0]
        if queued == 0 and sealed == len(ml_pipeline_sample()):
            break
        time.sleep(0.2)
    assert (queued, sealed) == (0, len(ml_pipeline_sample()))
    with db.connection() as conn:
        report = verify(conn)
    assert report.ok and report.pending == 0, report.summary()


def test_the_background_sealer_survives_an_unreachable_store(tmp_path, caplog):
    """A store that cannot be reached is logged (without the password) and retried; stop still returns."""
    import logging

    from lineage.audit.service import Background

    caplog.set_level(logging.WARNING, logger="lineage.audit")
    sealer = Background("postgresql://someone:s3cret-pw@127.0.0.1:9/none?connect_timeout=1", tmp_path, 0.2, 0).start()
    time.sleep(1.5)
    assert sealer.running
    sealer.stop()
    assert not sealer.running
    assert any("sealing" in r.getMessage() for r in caplog.records)
    assert not any("s3cret-pw" in r.getMessage() for r in caplog.records)
