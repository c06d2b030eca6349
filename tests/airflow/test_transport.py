"""The spooling transport: delivered when the server answers 2xx, spooled otherwise, never raises.

A small fault-injecting HTTP server stands in for ``lineage serve`` where the test needs a
specific failure; the last test sends to the real server and reads the store.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState

from lineage.airflow.transport import (
    SpoolingConfig,
    SpoolingTransport,
    claim_pending,
    count_lines,
    mark_replayed,
    pending_files,
)


def _event(name: str = "job") -> RunEvent:
    return RunEvent(
        eventType=RunState.START,
        eventTime=datetime.now(timezone.utc).isoformat(),
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="test", name=name),
        producer="https://example.com/test",
        inputs=[InputDataset(namespace="partner-drops", name="acme/photos")],
    )


class _FakeServer:
    """Answers every POST with ``status`` and keeps the bodies it received."""

    def __init__(self, status: int) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server(request):
    server = _FakeServer(getattr(request, "param", 201))
    yield server
    server.close()


def _transport(url: str, spool, api_key: str | None = None) -> SpoolingTransport:
    extra = {"api_key": api_key} if api_key else {}
    return SpoolingTransport(SpoolingConfig.from_dict({"type": "x", "url": url, "spool_dir": str(spool), "timeout": "2", **extra}))


def test_delivers_to_the_lineage_endpoint(fake_server, tmp_path):
    t = _transport(fake_server.url, tmp_path / "spool")
    t.emit(_event("a"))
    assert t.delivered == 1 and t.spooled == 0
    path, body = fake_server.received[0]
    assert path == "/api/v1/lineage"
    assert body["job"]["name"] == "a"
    assert not (tmp_path / "spool").exists()


def test_spools_when_the_server_is_down(tmp_path):
    t = _transport("http://127.0.0.1:9", tmp_path / "spool")
    t.emit(_event("a"))
    t.emit(_event("b"))
    [spool] = pending_files(tmp_path / "spool")
    lines = [json.loads(line) for line in spool.read_text().splitlines()]
    assert [e["job"]["name"] for e in lines] == ["a", "b"]
    assert t.spooled == 2


@pytest.mark.parametrize("fake_server", [500], indirect=True)
def test_spools_server_errors_as_pending(fake_server, tmp_path):
    _transport(fake_server.url, tmp_path / "spool").emit(_event())
    assert len(pending_files(tmp_path / "spool")) == 1


@pytest.mark.parametrize("fake_server", [400], indirect=True)
def test_keeps_rejected_events_apart(fake_server, tmp_path):
    _transport(fake_server.url, tmp_path / "spool").emit(_event())
    assert pending_files(tmp_path / "spool") == []
    assert len(list((tmp_path / "spool").glob("rejected-*.ndjson"))) == 1


def test_never_raises_even_when_the_spool_cannot_be_written(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    t = _transport("http://127.0.0.1:9", blocker)
    t.emit(_event("lost?"))  # must not raise
    assert "nor spooled" in caplog.text and '"name": "lost?"' in caplog.text


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="spool_dri"):
        SpoolingConfig.from_dict({"type": "x", "spool_dri": "/tmp"})


def _emit_many(spool: str, n: int) -> None:
    t = _transport("http://127.0.0.1:9", spool)
    for i in range(n):
        t.emit(_event(f"p{i}"))


def test_concurrent_writers_never_interleave_lines(tmp_path):
    spool = tmp_path / "spool"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_emit_many, args=(str(spool), 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    [path] = pending_files(spool)
    lines = path.read_text().splitlines()
    assert len(lines) == 100
    assert all(json.loads(line)["eventType"] == "START" for line in lines)


def test_claim_and_mark_replayed(tmp_path):
    spool = tmp_path / "spool"
    _emit_many(str(spool), 3)
    claimed = claim_pending(spool)
    assert [p.suffix for p in claimed] == [".replaying"] and pending_files(spool) == []
    _emit_many(str(spool), 1)  # a writer after the claim starts a fresh pending file
    assert count_lines(claimed[0]) == 3 and len(pending_files(spool)) == 1
    done = mark_replayed(claimed[0])
    assert done.parent.name == "replayed" and not claimed[0].exists()


def test_delivers_to_the_real_server(live_server, db, tmp_path, tokens):
    t = _transport(live_server.url, tmp_path / "spool", api_key=tokens("airflow", "emitter"))
    t.emit(_event("real"))
    assert t.delivered == 1, f"spooled instead: {list((tmp_path / 'spool').glob('*'))}"
    with db.connection() as conn:
        names = [r[0] for r in conn.execute("SELECT job_name FROM raw_events")]
    assert names == ["real"]


def test_the_real_server_refuses_without_a_token_and_the_event_is_kept(live_server, db, tmp_path):
    t = _transport(live_server.url, tmp_path / "spool")
    t.emit(_event("anonymous"))
    assert t.delivered == 0 and t.spooled == 1
    kept = [json.loads(line)["job"]["name"] for f in (tmp_path / "spool").glob("*.ndjson") for line in f.read_text().splitlines()]
    assert kept == ["anonymous"]
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0


def _async(url: str, spool, **extra) -> SpoolingTransport:
    params = {"type": "x", "url": url, "spool_dir": str(spool), "timeout": "2", "asynchronous": "true", **extra}
    return SpoolingTransport(SpoolingConfig.from_dict(params))


def test_asynchronous_delivery_is_flushed_on_close(fake_server, tmp_path):
    t = _async(fake_server.url, tmp_path / "spool")
    for i in range(20):
        t.emit(_event(f"a{i}"))
    t.close()
    assert sorted(b["job"]["name"] for _, b in fake_server.received) == sorted(f"a{i}" for i in range(20))
    assert t.delivered == 20 and not (tmp_path / "spool").exists()


def test_asynchronous_events_not_delivered_in_time_are_spooled(tmp_path):
    import socket

    # A server that accepts connections and never answers: every POST waits out its timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        t = _async(f"http://127.0.0.1:{silent.getsockname()[1]}", tmp_path / "spool", timeout="0.5", flush_timeout="0.2")
        for i in range(5):
            t.emit(_event(f"s{i}"))
        t.close()
        t.close()  # idempotent
        names = {json.loads(line)["job"]["name"] for f in (tmp_path / "spool").glob("*.ndjson") for line in f.read_text().splitlines()}
        # the event in flight when the flush timed out may be spooled by the worker a moment later
        assert {f"s{i}" for i in range(1, 5)} <= names
    finally:
        silent.close()
