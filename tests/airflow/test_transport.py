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

from lineage.airflow.spool import replay, status
from lineage.airflow.transport import HttpSender, SpoolingConfig, SpoolingTransport, pending_files


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
    """Answers every POST with ``status`` (and ``body``) and keeps the bodies it received."""

    def __init__(self, status: int, body: bytes = b"{}") -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                data = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(data)))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


OUR_400 = json.dumps({"code": 400, "message": "eventTime: not a date-time",
                      "errors": [{"field": "eventTime", "reason": "not a date-time"}]}).encode()


@pytest.fixture
def fake_server(request):
    param = getattr(request, "param", 201)
    server = _FakeServer(*param) if isinstance(param, tuple) else _FakeServer(param)
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
    t.close()
    assert status(tmp_path / "spool").pending == 0 and pending_files(tmp_path / "spool") == []


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


@pytest.mark.parametrize("fake_server", [(400, OUR_400)], indirect=True)
def test_our_servers_400_naming_a_field_is_rejected_and_put_aside(fake_server, tmp_path):
    t = _transport(fake_server.url, tmp_path / "spool")
    t.emit(_event("bad"))
    t.close()
    s = status(tmp_path / "spool")
    assert (s.pending, s.rejected, t.rejected) == (0, 1, 1)
    [log] = (tmp_path / "spool").glob("rejected-*.log")
    assert "eventTime" in log.read_text()


@pytest.mark.parametrize("fake_server", [(400, b"<html>400 Bad Request (nginx)</html>"),
                                         (400, b'{"error": "bad request"}'),
                                         (400, b'{"code": 400, "message": "x", "errors": []}'),
                                         # A 413 in our own shape is our server's verdict: rejected
                                         # (test_spool.py); one naming no field is a proxy's.
                                         (413, b'{"code": 413, "message": "request too large"}')], indirect=True)
def test_a_400_or_413_not_in_our_shape_stays_pending(fake_server, tmp_path):
    t = _transport(fake_server.url, tmp_path / "spool")
    t.emit(_event("proxied"))
    t.close()
    s = status(tmp_path / "spool")
    assert (s.pending, s.rejected) == (1, 0)


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
        p.join(60)
    lines = [line for path in pending_files(spool) for line in path.read_text().splitlines()]
    assert len(lines) == 100 and status(spool).pending == 100
    assert all(json.loads(line)["eventType"] == "START" for line in lines)


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
    assert t.delivered == 20 and pending_files(tmp_path / "spool") == []


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
        # Every event, the one in flight when the flush timed out included, is in the spool.
        assert sorted(_kept(tmp_path / "spool")) == [f"s{i}" for i in range(5)]
        assert status(tmp_path / "spool").pending == 5
    finally:
        silent.close()


# -- credentials: a refused token never loses an event, and a valid one replays it ----------

WRONG = "lin_000000000000_" + "x" * 43  # well-formed, matches no token


def _kept(spool) -> list[str]:
    """Job names of the events in the pending spool, in order."""
    return [json.loads(line)["job"]["name"] for f in pending_files(spool) for line in f.read_text().splitlines()]


def _stored(db) -> list[str]:
    with db.connection() as conn:
        return sorted(r[0] for r in conn.execute("SELECT job_name FROM raw_events"))


def _lineage_ingest(path, url: str, token: str | None, home) -> "subprocess.CompletedProcess":
    import os
    import subprocess
    import sys

    env = {**os.environ, "LINEAGE_HOME": str(home)}
    env.pop("LINEAGE_TOKEN", None)
    args = [sys.executable, "-c", "from lineage.cli import main; main()", "ingest", str(path), "--url", url]
    if token:
        args += ["--token", token]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def test_wrong_token_keeps_events_for_replay_and_a_good_token_stores_each_once(live_server, db, tmp_path, tokens):
    spool = tmp_path / "spool"
    t = _transport(live_server.url, spool, api_key=WRONG)
    for name in ("w1", "w2", "w3"):
        t.emit(_event(name))  # a task calling emit: never raises
    assert (t.delivered, t.spooled) == (0, 3)
    assert _kept(spool) == ["w1", "w2", "w3"], "401 must keep the events in the pending spool, not reject them"
    assert not list(spool.glob("rejected-*")) and _stored(db) == []

    [path] = pending_files(spool)
    refused = _lineage_ingest(path, live_server.url, WRONG, tmp_path / "home")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "not authenticated (the API token is not valid)" in refused.stderr and "`emitter`" in refused.stderr, refused.stderr
    assert len([line for line in refused.stderr.splitlines() if line.startswith("error:")]) == 1
    assert _stored(db) == []

    good = tokens("airflow-good", "emitter")
    done = _lineage_ingest(path, live_server.url, good, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "3 stored, 0 duplicate, 0 rejected" in done.stderr
    again = _lineage_ingest(path, live_server.url, good, tmp_path / "home")
    assert "0 stored, 3 duplicate, 0 rejected" in again.stderr, again.stderr
    assert _stored(db) == ["w1", "w2", "w3"]


def test_a_token_without_the_emitter_role_is_kept_too(live_server, db, tmp_path, tokens):
    spool = tmp_path / "spool"
    t = _transport(live_server.url, spool, api_key=tokens("reader", "viewer"))
    t.emit(_event("needs-emitter"))
    assert (t.delivered, t.spooled) == (0, 1) and _kept(spool) == ["needs-emitter"]
    assert _stored(db) == []


def test_a_token_scoped_to_another_namespace_is_kept_and_replays_with_the_right_scope(live_server, db, settings, tmp_path, tokens):
    from lineage.config import Settings
    from lineage.ingest_file import ingest_file

    spool = tmp_path / "spool"
    t = _transport(live_server.url, spool, api_key=tokens("elsewhere", "emitter", namespaces=["other"]))
    t.emit(_event("scoped"))  # the event's job namespace is `test`
    assert _kept(spool) == ["scoped"] and _stored(db) == []
    [path] = pending_files(spool)
    right = Settings(home=tmp_path / "home", url=live_server.url, token=tokens("in-scope", "emitter", namespaces=["test"]))
    assert ingest_file(path, right, quiet=True).stored == 1
    assert _stored(db) == ["scoped"]


@pytest.mark.parametrize("fake_server", [429, 503], indirect=True)
def test_a_proxy_answering_429_or_503_is_spooled_and_replayed(fake_server, live_server, db, tmp_path, tokens):
    spool = tmp_path / "spool"
    t = _transport(fake_server.url, spool, api_key=tokens("airflow", "emitter"))
    t.emit(_event("p1"))
    t.emit(_event("p2"))  # within the backoff after the first refusal: spooled, not sent
    assert len(fake_server.received) == 1 and t.spooled == 2
    assert _kept(spool) == ["p1", "p2"] and not list(spool.glob("rejected-*"))
    t.close()
    result = replay(spool, HttpSender(live_server.url, api_key=tokens("replayer", "emitter")))
    assert (result.delivered, result.stopped, status(spool).pending) == (2, None, 0)
    assert _stored(db) == ["p1", "p2"]


def test_a_token_revoked_mid_run_keeps_the_rest_and_a_new_token_replays_them(live_server, db, tmp_path, tokens):
    import httpx

    admin = tokens("admin", "admin")
    spool = tmp_path / "spool"
    t = _transport(live_server.url, spool, api_key=tokens("airflow-old", "emitter"))
    t.emit(_event("before-1"))
    t.emit(_event("before-2"))
    assert t.delivered == 2
    r = httpx.post(f"{live_server.url}/api/v1/auth/tokens/airflow-old/revoke", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    t.emit(_event("after-1"))  # the very next event after the revocation is refused, and kept
    t.emit(_event("after-2"))
    assert (t.delivered, t.spooled) == (2, 2)
    assert _kept(spool) == ["after-1", "after-2"]

    t.close()
    result = replay(spool, HttpSender(live_server.url, api_key=tokens("airflow-new", "emitter")))
    assert (result.delivered, result.rejected, result.stopped) == (2, 0, None)
    assert _stored(db) == ["after-1", "after-2", "before-1", "before-2"]


def test_asynchronous_delivery_with_a_refused_token_spools_on_close(live_server, db, tmp_path):
    t = _async(live_server.url, tmp_path / "spool", api_key=WRONG)
    for i in range(3):
        t.emit(_event(f"q{i}"))
    t.close()
    assert sorted(_kept(tmp_path / "spool")) == ["q0", "q1", "q2"] and _stored(db) == []


def test_openlineage_auth_block_is_accepted(live_server, db, tmp_path, tokens):
    params = {"type": "x", "url": live_server.url, "spool_dir": str(tmp_path / "spool"),
              "auth": {"type": "api_key", "apiKey": tokens("airflow", "emitter")}}
    t = SpoolingTransport(SpoolingConfig.from_dict(params))
    t.emit(_event("via-auth"))
    assert t.delivered == 1 and _stored(db) == ["via-auth"]
    assert "lin_" not in repr(t.config), "the token must not appear in the config's repr (logs)"


@pytest.mark.parametrize("auth, problem", [
    ({"type": "basic", "user": "x"}, "auth type `basic`"),
    ({"type": "api_key"}, "apiKey is missing"),
    ({"type": "api_key", "apiKey": "lin_a"}, "disagree"),
])
def test_unusable_auth_blocks_are_refused_by_name(auth, problem):
    params = {"type": "x", "auth": auth}
    if problem == "disagree":
        params["api_key"] = "lin_b"
    with pytest.raises(ValueError, match=problem):
        SpoolingConfig.from_dict(params)
