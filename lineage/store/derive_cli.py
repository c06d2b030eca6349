"""``lineage derive``: derivation workers as their own process (scale them apart from the API).

Also seals the tamper-evident ledger in the background, as ``lineage serve`` does.

Runs ``--workers`` threads that claim queued events with ``FOR UPDATE SKIP LOCKED``; any
number of these processes (and the threads inside ``lineage serve``) may run against one
store.  With ``--listen HOST:PORT`` it serves ``/healthz`` (200 while every thread is looping;
no database query) and ``/metrics`` (Prometheus text, with ``lineage_derivation_lag_seconds``
and ``lineage_derivation_queued_events`` read from the store at scrape time) for probes.
SIGTERM stops it after the current batch (an interrupted batch rolls back and is derived
again by another worker).
"""

from __future__ import annotations

import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import typer

# A thread whose loop has not come round for this long is stuck: the liveness probe says so.
STUCK_SECONDS = 120.0


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT (e.g. 0.0.0.0:9400)", param_hint="--listen")
    return host or "127.0.0.1", int(port)


def workers_healthy(workers) -> tuple[bool, str]:
    """Are ``workers``' threads all alive and looping?  ``(ok, detail)`` for the probes."""
    if not workers.alive():
        return False, "a derivation thread has stopped"
    idle = time.monotonic() - workers.last_loop
    if idle >= STUCK_SECONDS:
        return False, f"no derivation loop has come round for {idle:.0f} s"
    return True, "derivation threads alive"


def _probe_server(address: tuple[str, int], workers, db) -> ThreadingHTTPServer:
    from lineage import metrics

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/healthz":  # liveness: the threads loop; no database query
                ok, detail = workers_healthy(workers)
                body, status, kind = (detail + "\n").encode(), (200 if ok else 503), "text/plain"
            elif self.path == "/metrics":  # the same lag and queue gauges as the API's, read from the store now
                body, kind = metrics.exposition(db)
                status = 200
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # probes every few seconds: not worth a log line each
            pass

    server = ThreadingHTTPServer(address, Handler)
    threading.Thread(target=server.serve_forever, name="lineage-derive-probe", daemon=True).start()
    return server


def derive(
    workers: int = typer.Option(2, min=1, max=64, help="Derivation threads in this process."),
    listen: Optional[str] = typer.Option(None, help="Serve /healthz and /metrics on HOST:PORT (e.g. 0.0.0.0:9400)."),
    once: bool = typer.Option(False, help="Derive everything queued now, then exit (a maintenance or test run)."),
    retry_refused: bool = typer.Option(False, "--retry-refused",
                                       help="Queue again the events kept aside in derive_refusals (after a fix), then run as asked."),
) -> None:
    """Derive the lineage graph of acknowledged events until stopped (SIGTERM or Ctrl-C)."""
    from lineage.cli import _fail, _settings
    from lineage.errors import LineageError
    from lineage.store.db import open_database
    from lineage.store.derive import Workers, catch_up, pending_events

    address = _parse_listen(listen) if listen else None
    settings = _settings()
    try:
        db = open_database(settings, migrate=True)  # the embedded store migrates; a configured one must be current
    except LineageError as exc:
        _fail(exc.message)
    with db:
        if retry_refused:
            from lineage.store.derive import requeue_refused

            typer.echo(f"{db.run(requeue_refused)} kept-aside event(s) queued again")
        if once:
            caught = catch_up(db, timeout=24 * 3600)
            with db.connection() as conn:
                left = pending_events(conn)
            typer.echo(f"derived; {left} events still queued" if not caught or left else "derived; nothing queued")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        from lineage.audit.service import background

        # The worker seals the ledger too (LINEAGE_AUDIT_SEAL_INTERVAL, default every second; an
        # advisory lock lets one process seal at a time), so API replicas may leave it to it.
        ledger = background(settings, db)
        pool = Workers(db, workers)
        server = _probe_server(address, pool, db) if address else None
        typer.echo(f"deriving with {workers} threads" + (f"; probes on {address[0]}:{address[1]}" if address else ""))
        try:
            while not stop.wait(1.0):
                pass
        finally:
            if server is not None:
                server.shutdown()
            pool.stop()
            ledger.stop()
