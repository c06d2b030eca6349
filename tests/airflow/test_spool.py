"""The spool loses nothing: kills, a misbehaving proxy, torn and malformed lines, many writers.

Every test ends by reading the real store: each event is there exactly once (the store keeps
one copy of an event however often it is sent), and ``lineage spool status`` shows nothing
pending.  Faults come from real processes (SIGKILL) and a real HTTP proxy on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from lineage.airflow.spool import Spool, replay, status
from lineage.airflow.transport import HttpSender, SpoolingConfig, SpoolingTransport, pending_files


def _event(name: str) -> dict:
    return {
        "eventType": "START",
        "eventTime": datetime.now(timezone.utc).isoformat(),
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "spool-test", "name": name},
        "producer": "https://example.com/test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def _stored(db) -> dict[str, int]:
    """Stored events per job name."""
    with db.connection() as conn:
        return dict(conn.execute("SELECT job_name, count(*) FROM raw_events GROUP BY job_name").fetchall())


class Proxy:
    """A reverse proxy on loopback in front of the real server, with a script of faults.

    ``script`` maps the n-th request (0-based) to a status the proxy answers itself (with a
    body that is not ours), or to ``"hang-before"`` / ``"hang-after"``: hold the request without
    answering, before or after forwarding it upstream (``hung`` is set when it is reached).
    """

    def __init__(self, upstream: str, script: dict[int, object] | None = None) -> None:
        self.script = dict(script or {})
        self.count = 0
        self.answers: list[int] = []
        self.hung = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    n, proxy.count = proxy.count, proxy.count + 1
                action = proxy.script.get(n)
                if action == "hang-before":
                    proxy.hung.set()
                    proxy.release.wait(60)
                    return
                if isinstance(action, int):
                    page = f"<html><body><h1>{action}</h1>nginx</body></html>".encode()
                    proxy.answers.append(action)
                    self.send_response(action)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                r = httpx.post(upstream + self.path, content=body, headers=headers, timeout=30)
                if action == "hang-after":  # stored upstream, but the client never hears so
                    proxy.hung.set()
                    proxy.release.wait(60)
                    return
                proxy.answers.append(r.status_code)
                self.send_response(r.status_code)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *args):
                pass

        lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def emitter(tokens):
    return tokens("spool-airflow", "emitter")


def _transport(url: str, spool, token: str | None, **extra) -> SpoolingTransport:
    params = {"type": "x", "url": url, "spool_dir": str(spool), "timeout": "10", **extra}
    if token:
        params["api_key"] = token
    return SpoolingTransport(SpoolingConfig.from_dict(params))


WORKER = """
import json, sys
from lineage.airflow.transport import SpoolingConfig, SpoolingTransport
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
import uuid, datetime
url, spool, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = SpoolingTransport(SpoolingConfig.from_dict({"type": "x", "url": url, "spool_dir": spool, "api_key": token, "timeout": "60"}))
for i in range(n):
    t.emit(RunEvent(eventType=RunState.START, eventTime=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    run=Run(runId=str(uuid.uuid4())), job=Job(namespace="spool-test", name=f"k{i}"),
                    producer="https://example.com/test"))
    print(f"emitted k{i}", flush=True)
"""


@pytest.mark.parametrize("hang", ["hang-before", "hang-after"])
def test_a_worker_killed_between_spooling_and_delivery_loses_nothing_and_stores_each_once(hang, live_server, db, tmp_path, emitter):
    """SIGKILL while the 4th event is on its way: before the server got it, or after it stored it
    but before the worker heard back (so the worker never marked it delivered)."""
    spool = tmp_path / "spool"
    proxy = Proxy(live_server.url, {3: hang})
    try:
        worker = subprocess.Popen([sys.executable, "-c", WORKER, proxy.url, str(spool), emitter, "6"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proxy.hung.wait(120), worker.stderr.read() if worker.poll() is not None else "the worker never sent the 4th event"
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        assert worker.returncode == -signal.SIGKILL
    finally:
        proxy.close()
    assert status(spool).pending == 1, "the killed worker's event in flight must be in the spool"
    expected_before = {"k0": 1, "k1": 1, "k2": 1} if hang == "hang-before" else {"k0": 1, "k1": 1, "k2": 1, "k3": 1}
    assert _stored(db) == expected_before

    done = _cli(["spool", "replay", "--dir", str(spool), "--url", live_server.url], emitter, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 delivered, 0 rejected, 0 malformed put aside, 0 still pending" in done.stderr
    assert _stored(db) == {"k0": 1, "k1": 1, "k2": 1, "k3": 1}, "every spooled event once; k4, k5 were never emitted"
    assert status(spool).pending == 0 and pending_files(spool) == []


def test_a_proxy_answering_401_413_429_503_then_recovering_delivers_everything_once(live_server, db, tmp_path, emitter):
    spool = tmp_path / "spool"
    proxy = Proxy(live_server.url, {0: 401, 1: 413, 2: 429, 3: 503})
    try:
        # No backoff wait, so each emit tries the proxy and meets the next fault.
        t = _transport(proxy.url, spool, emitter, retry_base="0")
        for i in range(6):
            t.emit(_event(f"x{i}"))  # x0..x3 meet the faults; x4 gets through and x0..x3 follow it
        t.close()
    finally:
        proxy.close()
    assert proxy.answers[:4] == [401, 413, 429, 503]
    assert _stored(db) == {f"x{i}": 1 for i in range(6)}
    assert (t.delivered, t.spooled, t.rejected) == (6, 0, 0)
    s = status(spool)
    assert (s.pending, s.rejected, s.malformed) == (0, 0, 0) and pending_files(spool) == []


def test_faults_with_backoff_then_lineage_spool_replay_delivers_everything_once(live_server, db, tmp_path, emitter):
    spool = tmp_path / "spool"
    proxy = Proxy(live_server.url, {0: 503, 1: 401, 2: 413, 3: 429})
    try:
        t = _transport(proxy.url, spool, emitter)  # default backoff: after the 503 the rest only spool
        for i in range(5):
            t.emit(_event(f"b{i}"))
        t.close()
        assert proxy.count == 1, "during the backoff the transport must not hammer the proxy"
        first = _cli(["spool", "replay", "--dir", str(spool), "--url", proxy.url], emitter, tmp_path)
        assert first.returncode != 0 and "Traceback" not in first.stderr
        assert [line for line in first.stderr.splitlines() if line.startswith("error:")], first.stderr
        for _ in range(3):  # 413, 429 from the proxy, then it recovers
            _cli(["spool", "replay", "--dir", str(spool), "--url", proxy.url], emitter, tmp_path)
        again = _cli(["spool", "replay", "--dir", str(spool), "--url", proxy.url], emitter, tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        proxy.close()
    assert _stored(db) == {f"b{i}": 1 for i in range(5)}
    assert status(spool).pending == 0


def _cli(argv: list[str], token: str | None, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LINEAGE_HOME": str(tmp_path / "cli-home")}
    env.pop("LINEAGE_TOKEN", None)
    if token:
        env["LINEAGE_TOKEN"] = token
    return subprocess.run([sys.executable, "-c", "from lineage.cli import main; main()", *argv],
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_malformed_line_mid_file_is_put_aside_and_never_stalls_the_rest(live_server, db, tmp_path, emitter):
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [json.dumps(_event("m0")), "{not json", json.dumps(_event("m1")), "[1, 2]", json.dumps(_event("m2"))]
    torn = json.dumps(_event("torn"))[:40]  # the writer died mid-line: no newline
    (spool / "pending-20260101T000000000000-host-1-abcdef.ndjson").write_text("\n".join(lines) + "\n" + torn)
    result = replay(spool, HttpSender(live_server.url, api_key=emitter))
    assert (result.delivered, len(result.malformed), result.stopped) == (3, 3, None)
    assert [w.rsplit(":", 1)[1] for w in result.malformed] == ["2", "4", "6"]
    assert _stored(db) == {"m0": 1, "m1": 1, "m2": 1}
    s = status(spool)
    assert (s.pending, s.malformed) == (0, 3) and pending_files(spool) == []
    shown = _cli(["spool", "status", "--dir", str(spool), "--json"], None, tmp_path)
    assert json.loads(shown.stdout) | {"directory": None} == {
        "directory": None, "pending": 0, "pendingFiles": 0, "rejected": 0, "malformed": 3}


def _emit_down(spool: str, prefix: str, n: int) -> None:
    t = _transport("http://127.0.0.1:9", spool, None, retry_base="0")  # no backoff left for the next test step
    for i in range(n):
        t.emit(_event(f"{prefix}{i}"))
    t.close()


def _replay_into(spool: str, url: str, token: str) -> None:
    replay(spool, HttpSender(url, api_key=token))


def test_concurrent_emitters_and_replayers_on_one_spool_store_each_event_once(live_server, db, tmp_path, emitter):
    import multiprocessing

    spool = tmp_path / "spool"
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_emit_down, args=(str(spool), f"w{k}-", 20)) for k in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(120)
    assert status(spool).pending == 80 and len(pending_files(spool)) == 4
    # Three replayers at once, while a fifth writer keeps its file open (locked, so skipped).
    live = Spool(spool)
    live.append(json.dumps(_event("still-writing")))
    replayers = [ctx.Process(target=_replay_into, args=(str(spool), live_server.url, emitter)) for _ in range(3)]
    for p in replayers:
        p.start()
    for p in replayers:
        p.join(120)
    stored = _stored(db)
    assert stored == {f"w{k}-{i}": 1 for k in range(4) for i in range(20)}
    assert status(spool).pending == 1, "the live writer's file is not touched"
    live.close()  # its owner went away: now it is replayable
    assert replay(spool, HttpSender(live_server.url, api_key=emitter)).delivered == 1
    assert _stored(db)["still-writing"] == 1 and status(spool).pending == 0


def test_the_next_emit_replays_what_an_earlier_process_left(live_server, db, tmp_path, emitter):
    spool = tmp_path / "spool"
    _emit_down(str(spool), "early", 3)
    assert status(spool).pending == 3
    t = _transport(live_server.url, spool, emitter)
    t.emit(_event("late"))
    t.close()
    assert (t.delivered, t.replayed) == (1, 3)
    assert _stored(db) == {"early0": 1, "early1": 1, "early2": 1, "late": 1}
    assert status(spool).pending == 0


def test_replay_at_emit_is_bounded(live_server, db, tmp_path, emitter):
    spool = tmp_path / "spool"
    _emit_down(str(spool), "old", 5)
    t = _transport(live_server.url, spool, emitter, replay_limit="2")
    t.emit(_event("now"))
    t.close()
    assert t.replayed == 2 and status(spool).pending == 3


UNWRITABLE = """
import logging, resource, signal, sys
from lineage.airflow.transport import SpoolingConfig, SpoolingTransport
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
import uuid, datetime
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
url, spool, token, mode = sys.argv[1:5]
if mode == "full":  # writes beyond 64 bytes fail with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
t = SpoolingTransport(SpoolingConfig.from_dict({"type": "x", "url": url, "spool_dir": spool, "api_key": token}))
t.emit(RunEvent(eventType=RunState.START, eventTime=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                run=Run(runId=str(uuid.uuid4())), job=Job(namespace="spool-test", name=f"{mode}-spool"),
                producer="https://example.com/test"))
t.close()
print("task went on", t.delivered)
"""


@pytest.mark.parametrize("mode", ["full", "readonly"])
def test_a_full_or_readonly_spool_never_fails_the_task(mode, live_server, db, tmp_path, emitter):
    # As root nothing is read-only by mode bits; /proc refuses new directories to everyone.
    spool = str(tmp_path / "spool") if mode == "full" else "/proc/lineage-spool"
    up = subprocess.run([sys.executable, "-c", UNWRITABLE, live_server.url, spool, emitter, mode],
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0 and "task went on 1" in up.stdout, up.stderr
    assert "cannot write the lineage spool" in up.stderr
    assert _stored(db) == {f"{mode}-spool": 1}, "with no spool the event is still sent"
    down = subprocess.run([sys.executable, "-c", UNWRITABLE, "http://127.0.0.1:9", spool, emitter, mode],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "task went on 0" in down.stdout, down.stderr
    assert "nor spooled" in down.stderr and f'"name": "{mode}-spool"' in down.stderr, "the event is logged in full"


def test_replay_starts_nothing_after_its_deadline(tmp_path):
    import time

    from lineage.airflow.spool import DELIVERED

    spool = tmp_path / "spool"
    _emit_down(str(spool), "late", 3)
    sent = []
    result = replay(spool, lambda body: sent.append(body) or DELIVERED, deadline=time.monotonic())
    assert (sent, result.delivered, result.pending, status(spool).pending) == ([], 0, 3, 3)
    assert replay(spool, lambda body: sent.append(body) or DELIVERED).delivered == 3 and status(spool).pending == 0


def test_backoff_spaces_attempts_and_a_success_resets_it(tmp_path):
    from lineage.airflow.spool import Backoff

    b = Backoff(tmp_path, base=3600)
    assert b.due()
    b.failed()
    assert not b.due() and not Backoff(tmp_path, base=3600).due(), "shared by every process using the directory"
    b.succeeded()
    assert b.due()


def _append_in_child(spool: Spool) -> None:
    spool.append(json.dumps(_event("child")))
    spool.close()


def test_a_fork_while_another_thread_holds_the_lock_does_not_deadlock_the_child(tmp_path):
    import multiprocessing

    spool = Spool(tmp_path / "spool")
    spool.append(json.dumps(_event("parent")))
    with spool._lock:  # as if the transport's worker thread were marking an event at fork time
        child = multiprocessing.get_context("fork").Process(target=_append_in_child, args=(spool,))
        child.start()
    child.join(60)
    assert child.exitcode == 0, "the child must not inherit a held lock"
    assert status(tmp_path / "spool").pending == 2


# -- review (rv9): faults that used to lose events, stall every replay, or mute the workers ------


def test_our_servers_413_is_put_aside_and_never_stalls_the_events_behind_it(live_server, app, db, tmp_path, emitter):
    """An event larger than the server's LINEAGE_MAX_BODY_BYTES can never be stored: left pending,
    it kept every worker backing off and stopped every replay at itself, so nothing after it
    arrived.  It is rejected (counted by `lineage spool status`) and the rest is delivered."""
    app.state.settings = app.state.settings.model_copy(update={"max_body_bytes": 2048})
    spool = tmp_path / "spool"
    huge = _event("huge")
    huge["run"]["facets"] = {"padding": {"_producer": "https://example.com/test", "_schemaURL": "https://example.com/s",
                                         "blob": "x" * 4096}}
    t = _transport(live_server.url, spool, emitter)
    t.emit_body = None
    from openlineage.client.serde import Serde  # noqa: F401  (the transport serialises dicts as they are)

    class _Raw(dict):
        pass

    t.emit(_Raw(huge))
    t.emit(_Raw(_event("after-huge")))
    t.close()
    assert _stored(db) == {"after-huge": 1}
    s = status(spool)
    assert (s.pending, s.rejected) == (0, 1)
    shown = _cli(["spool", "status", "--dir", str(spool), "--json"], None, tmp_path)
    assert json.loads(shown.stdout)["rejected"] == 1
    reason = next(spool.glob("rejected-*.log")).read_text()
    assert "HTTP 413" in reason and "LINEAGE_MAX_BODY_BYTES" in reason


def test_a_proxys_413_still_stays_pending(tmp_path):
    from lineage.airflow.transport import classify

    html = httpx.Response(413, text="<html><body>413 Request Entity Too Large</body></html>")
    other_json = httpx.Response(413, json={"code": 413, "message": "too big"})  # no field named: not ours
    assert classify(html).kind == classify(other_json).kind == "pending"


def test_a_short_write_on_a_full_disk_never_glues_the_next_event_to_a_fragment(live_server, db, tmp_path, emitter, monkeypatch):
    """ENOSPC after half a line: the next event appended (space freed meanwhile) used to follow
    the fragment on the same line, and the replay put both aside as one malformed line."""
    from lineage.airflow import spool as spool_mod

    spool = Spool(tmp_path / "spool")
    real = spool_mod._write_all

    def half_then_full(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_mod, "_write_all", half_then_full)
    with pytest.raises(OSError):
        spool.append(json.dumps(_event("lost-to-enospc")))  # the transport sends it without the spool
    monkeypatch.setattr(spool_mod, "_write_all", real)
    spool.append(json.dumps(_event("after-enospc")))
    spool.close()
    result = replay(tmp_path / "spool", HttpSender(live_server.url, api_key=emitter))
    assert (result.delivered, result.malformed) == (1, [])
    assert _stored(db) == {"after-enospc": 1}


@pytest.mark.parametrize("until", ["1e18", "NaN", "Infinity"])
def test_a_corrupt_or_skewed_backoff_file_does_not_mute_delivery(until, tmp_path):
    """A `.backoff` naming a wait beyond the cap (another host's clock far ahead, or a corrupt
    file) used to keep every transport on the spool only spooling, for as long as it said."""
    from lineage.airflow.spool import Backoff

    (tmp_path / ".backoff").write_text('{"failures": 3, "until": %s}' % until)
    assert Backoff(tmp_path, base=1, cap=60).due()
    b = Backoff(tmp_path, base=3600, cap=3600)
    b.failed()
    assert not b.due(), "a genuine wait within the cap is still honoured"


def test_lineage_spool_replay_that_delivers_resets_the_shared_backoff(live_server, db, tmp_path, emitter):
    from lineage.airflow.spool import Backoff

    spool = tmp_path / "spool"
    _emit_down(str(spool), "r", 2)
    Backoff(spool, base=3600, cap=3600).failed()
    assert not Backoff(spool, cap=3600).due()
    done = _cli(["spool", "replay", "--dir", str(spool), "--url", live_server.url], emitter, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _stored(db) == {"r0": 1, "r1": 1}
    assert Backoff(spool, cap=3600).due(), "workers deliver again at their next event, not an hour later"


class _SizeLimitProxy:
    """A reverse proxy with a body-size limit: a 413 page for bodies over ``limit``, else forwards."""

    def __init__(self, upstream: str, limit: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if len(body) > limit:
                    status, out = 413, b"<html><body><h1>413 Request Entity Too Large</h1></body></html>"
                else:
                    r = httpx.post(upstream + self.path, content=body, timeout=30, headers={
                        "Authorization": self.headers.get("Authorization", ""), "Content-Type": "application/json"})
                    status, out = r.status_code, r.content
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _padded(name: str) -> dict:
    event = _event(name)
    event["run"]["facets"] = {"padding": {"_producer": "https://example.com/test", "_schemaURL": "https://example.com/s",
                                          "blob": "x" * 4096}}
    return event


def test_an_event_too_large_for_the_proxy_stays_pending_without_stalling_the_rest(live_server, db, tmp_path, emitter):
    """A proxy's 413 used to stop every replay at that one event: nothing after it, in its file
    or any later one, was ever delivered.  Now it alone stays pending, and the replay says why."""
    spool = tmp_path / "spool"
    spool.mkdir()
    first = [json.dumps(_event("p0")), json.dumps(_padded("big")), json.dumps(_event("p1"))]
    (spool / "pending-20260101T000000000000-host-1-aaaaaa.ndjson").write_text("\n".join(first) + "\n")
    (spool / "pending-20260101T000001000000-host-2-bbbbbb.ndjson").write_text(json.dumps(_event("p2")) + "\n")
    proxy = _SizeLimitProxy(live_server.url, 3000)
    try:
        result = replay(spool, HttpSender(proxy.url, api_key=emitter))
        assert (result.delivered, result.too_large, result.stopped, result.pending) == (3, 1, None, 1)
        assert _stored(db) == {"p0": 1, "p1": 1, "p2": 1}
        assert status(spool).pending == 1
        again = _cli(["spool", "replay", "--dir", str(spool), "--url", proxy.url], emitter, tmp_path)
        assert again.returncode != 0 and "too large (HTTP 413) by a proxy" in again.stderr, again.stderr
        t = _transport(proxy.url, spool, emitter)
        t.emit(_padded("big-live"))
        t.emit(_event("after-big-live"))  # no backoff for a size refusal: this one goes straight through
        t.close()
        assert _stored(db)["after-big-live"] == 1
    finally:
        proxy.close()
    done = _cli(["spool", "replay", "--dir", str(spool), "--url", live_server.url], emitter, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _stored(db) == {"p0": 1, "p1": 1, "p2": 1, "big": 1, "big-live": 1, "after-big-live": 1}
    assert status(spool).pending == 0


def test_a_short_write_to_the_rejected_file_is_cut_back(tmp_path, monkeypatch):
    from lineage.airflow import spool as spool_mod
    from lineage.airflow.spool import count_lines, put_aside

    real = spool_mod._write_all

    def half(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_mod, "_write_all", half)
    with pytest.raises(OSError):
        put_aside(tmp_path, "rejected", json.dumps(_event("r0")).encode(), "HTTP 400")
    monkeypatch.setattr(spool_mod, "_write_all", real)
    path = put_aside(tmp_path, "rejected", json.dumps(_event("r1")).encode(), "HTTP 400")
    assert count_lines(path) == 1 and json.loads(path.read_text())["job"]["name"] == "r1"
