"""``/metrics`` (lineage/metrics.py): each counter moves where its event happens, labels hold
fixed values only (nothing a client sent), the derivation gauges come from the store at
scrape time, and ``lineage derive --listen`` serves the same gauges.

Counters are per process and every test in this process shares them, so each assertion is
about the change across one action, read from the scraped text as a scraper reads it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lineage.samples import dataset, run_event
from tests_support import LiveServer


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape(c: httpx.Client) -> dict:
    r = c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def _serve(settings, db, **overrides):
    from lineage.api.app import create_app

    return LiveServer(create_app(settings.model_copy(update=overrides), db=db))


@pytest.fixture
def emitter(tokens):
    return {"Authorization": f"Bearer {tokens('emit', 'emitter')}"}


def _event(job: str = "j", ns: str = "ns", **kw) -> dict:
    return run_event("START", (ns, job), str(uuid.uuid4()), **kw)


def test_an_accepted_event_is_counted_and_timed(anon_client, emitter):
    before = _scrape(anon_client)
    assert anon_client.post("/api/v1/lineage", json=_event(), headers=emitter).status_code == 201
    after = _scrape(anon_client)
    assert _value(after, "lineage_events_accepted_total", endpoint="single") - _value(before, "lineage_events_accepted_total", endpoint="single") == 1
    assert _value(after, "lineage_ingest_request_seconds_count", endpoint="single") - _value(before, "lineage_ingest_request_seconds_count", endpoint="single") == 1
    assert _value(after, "lineage_group_commit_events_count") > _value(before, "lineage_group_commit_events_count")


def _rejected(after, before, endpoint, reason) -> float:
    return (_value(after, "lineage_events_rejected_total", endpoint=endpoint, reason=reason)
            - _value(before, "lineage_events_rejected_total", endpoint=endpoint, reason=reason))


def test_rejections_are_counted_by_their_fixed_reason(anon_client, emitter, tokens):
    scoped = {"Authorization": f"Bearer {tokens('scoped', 'emitter', namespaces=['ml-pipeline'])}"}
    viewer = {"Authorization": f"Bearer {tokens('viewer', 'viewer')}"}
    before = _scrape(anon_client)
    assert anon_client.post("/api/v1/lineage", content=b"{not json", headers=emitter).status_code == 400
    assert anon_client.post("/api/v1/lineage", json=_event(ns="partner-drops"), headers=scoped).status_code == 403
    assert anon_client.post("/api/v1/lineage", json=_event()).status_code == 401
    assert anon_client.post("/api/v1/lineage", json=_event(), headers=viewer).status_code == 403
    batch = [_event(ns="ml-pipeline"), _event(ns="partner-drops"), "not an event", _event(ns="ml-pipeline", job="k")]
    r = anon_client.post("/api/v1/lineage/batch", json=batch, headers=scoped)
    assert r.status_code == 200 and r.json()["stored"] == 2, r.text
    after = _scrape(anon_client)
    assert _rejected(after, before, "single", "invalid_event") == 1
    assert _rejected(after, before, "single", "out_of_scope") == 1
    assert _rejected(after, before, "single", "unauthenticated") == 1
    assert _rejected(after, before, "single", "forbidden") == 1
    assert _rejected(after, before, "batch", "out_of_scope") == 1
    assert _rejected(after, before, "batch", "invalid_event") == 1
    assert _value(after, "lineage_events_accepted_total", endpoint="batch") - _value(before, "lineage_events_accepted_total", endpoint="batch") == 2
    assert _value(after, "lineage_events_accepted_total", endpoint="single") == _value(before, "lineage_events_accepted_total", endpoint="single")


def test_a_body_over_the_limit_is_counted_too_large(settings, db, emitter):
    with _serve(settings, db, max_body_bytes=1024) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        before = _scrape(c)
        big = _event(job="x" * 2000)
        assert c.post("/api/v1/lineage", json=big, headers=emitter).status_code == 413
        assert _rejected(_scrape(c), before, "single", "too_large") == 1


def test_gate_decisions_are_counted_by_outcome_and_block_code(anon_client, db, tokens):
    from lineage.contracts import registry
    from lineage.contracts.document import load_contract
    from example_pipeline.sample import ml_pipeline_sample
    from lineage.store.ingest import ingest_events
    from lineage.events import parse_event
    from tests_support import principal

    ROOT = Path(__file__).resolve().parents[1]

    with db.connection() as conn:
        ingest_events(conn, [parse_event(e) for e in ml_pipeline_sample()])
        doc = load_contract(ROOT / "contracts" / "acme-stock-photos.yaml")
        registry.register(conn, doc, principal("data-requests@example.com", "requester"))
        state = registry.approve(conn, doc.id, principal("dpo@example.com", "steward"))
        if state.action == "endorse":
            registry.approve(conn, doc.id, principal("privacy-counsel@example.com", "steward"))
    gate = {"Authorization": f"Bearer {tokens('gate', 'emitter')}"}
    before = _scrape(anon_client)
    blocked = anon_client.post("/api/v1/gate/check", headers=gate, json={
        "job": "ml:train", "purpose": "train_ai_system", "inputs": ["dataset:nowhere:never-seen"]}).json()
    assert blocked["allowed"] is False and [r["code"] for r in blocked["reasons"]] == ["unknown_provenance"]
    allowed = anon_client.post("/api/v1/gate/check", headers=gate, json={
        "job": "ml-pipeline:ingest_partner_drop.acme", "purpose": "train_ai_system",
        "inputs": ["dataset:partner-drops:acme/photos"]}).json()
    assert allowed["allowed"] is True, allowed["text"]
    # A check validated on the worker is provisional: counted once it completes, not twice.
    provisional = anon_client.post("/api/v1/gate/check", headers=gate, json={
        "job": "ml-pipeline:ingest_partner_drop.acme", "purpose": "train_ai_system",
        "inputs": ["dataset:partner-drops:acme/photos"], "validate_on_worker": True}).json()
    assert provisional["final"] is False
    after = _scrape(anon_client)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("lineage_gate_decisions_total", outcome="blocked") == 1
    assert delta("lineage_gate_decisions_total", outcome="allowed") == 1
    assert delta("lineage_gate_blocks_total", reason="unknown_provenance") == 1
    assert delta("lineage_gate_blocks_total", reason="no_contract") == 0


def test_nothing_a_client_sent_appears_in_the_metrics(anon_client, emitter, tokens):
    """Adversarial: distinctive names in accepted, rejected and gated traffic; none is scraped."""
    marks = [f"zz{uuid.uuid4().hex}" for _ in range(7)]
    job, ns, ds_ns, ds_name, bad_job, gate_job, token_name = marks
    scoped = {"Authorization": f"Bearer {tokens(token_name, 'emitter', namespaces=['elsewhere'])}"}
    assert anon_client.post("/api/v1/lineage", json=_event(job=job, ns=ns, outputs=[dataset(ds_ns, ds_name)]),
                            headers=emitter).status_code == 201
    assert anon_client.post("/api/v1/lineage", json=_event(job=bad_job, ns=ns), headers=scoped).status_code == 403
    assert anon_client.post("/api/v1/lineage", content=f'{{"job": "{bad_job}"'.encode(), headers=emitter).status_code == 400
    anon_client.post("/api/v1/lineage/batch", json=[{"eventType": job, "job": {"namespace": ns, "name": 7}}], headers=emitter)
    anon_client.post("/api/v1/gate/check", headers=emitter, json={
        "job": f"{ns}:{gate_job}", "purpose": "train_ai_system", "inputs": [f"dataset:{ds_ns}:{ds_name}"]})
    text = anon_client.get("/metrics").text
    for mark in marks:
        assert mark not in text
    # Every label value is one of the fixed sets.
    from lineage import metrics

    fixed = set(metrics.ENDPOINTS) | set(metrics.REJECT_REASONS) | set(metrics.GATE_CODES) | {"allowed", "blocked"}
    for (name, labels), _ in _samples(text).items():
        for key, value in labels:
            if key != "le":
                assert value in fixed, (name, key, value)


def test_derivation_gauges_are_read_from_the_store_at_scrape_time(settings, db, emitter):
    from lineage.store.derive import catch_up

    with _serve(settings, db, derive_workers=0) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        s = _scrape(c)
        assert _value(s, "lineage_store_up") == 1
        assert _value(s, "lineage_derivation_queued_events") == 0 and _value(s, "lineage_derivation_lag_seconds") == 0
        for _ in range(3):
            assert c.post("/api/v1/lineage", json=_event(), headers=emitter).status_code == 201
        s = _scrape(c)
        assert _value(s, "lineage_derivation_queued_events") == 3
        assert _value(s, "lineage_derivation_lag_seconds") > 0
        assert catch_up(db, 30)
        s = _scrape(c)
        assert _value(s, "lineage_derivation_queued_events") == 0 and _value(s, "lineage_derivation_lag_seconds") == 0


def test_a_store_that_is_down_is_a_scrape_with_store_up_zero(settings, db, pg_root, db_url):
    name = db_url.split("?")[0].rsplit("/", 1)[1]
    with _serve(settings, db, derive_workers=0) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        with psycopg.connect(pg_root, autocommit=True) as root:
            root.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            root.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            r = c.get("/metrics")
            assert r.status_code == 200
            s = _samples(r.text)
            assert _value(s, "lineage_store_up") == 0
            assert not any(n == "lineage_derivation_lag_seconds" for n, _ in s)  # no stale value
        finally:
            with psycopg.connect(pg_root, autocommit=True) as root:
                root.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_metrics_behind_a_credential_when_not_public(settings, db, admin_token, tokens):
    with _serve(settings, db, metrics_public=False) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer lin_forged"}).status_code == 401
        # Any valid credential (a scraper's token needs no role that reads lineage).
        scraper = tokens("prometheus", "emitter")
        r = c.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
        assert r.status_code == 200 and "lineage_events_accepted_total" in r.text
        assert c.get("/healthz").status_code == 200  # the probes stay open


# -- lineage derive --listen -----------------------------------------------------------------------
def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_derive_process_serves_probes_and_the_store_gauges_and_stops_on_sigterm(settings, db, tmp_path):
    from lineage.events import parse_event
    from lineage.store.ingest import ingest_events

    with db.connection() as conn:  # two events acknowledged, not derived: the process must derive them
        ingest_events(conn, [parse_event(_event()), parse_event(_event())], defer=True)
    port = _port()
    env = {**os.environ, "LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": settings.database_url.get_secret_value()}
    env.pop("LINEAGE_MIGRATION_DATABASE_URL", None)
    log = open(tmp_path / "derive.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lineage.cli", "derive", "--workers", "1", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60

        def get(path):
            try:
                return httpx.get(base + path, timeout=5)
            except httpx.TransportError:
                return None

        while (r := get("/healthz")) is None or r.status_code != 200:
            assert proc.poll() is None, (tmp_path / "derive.log").read_text()
            assert time.monotonic() < deadline, "lineage derive never answered /healthz"
            time.sleep(0.1)
        while True:
            s = _samples(get("/metrics").text)
            if _value(s, "lineage_derivation_queued_events") == 0:
                break
            assert time.monotonic() < deadline, "the derive process never emptied the queue"
            time.sleep(0.1)
        assert ("lineage_derivation_lag_seconds", ()) in s and _value(s, "lineage_store_up") == 1
        assert _value(s, "lineage_events_derived_total") == 2
        assert get("/nowhere").status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "derive.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
