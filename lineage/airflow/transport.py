"""An OpenLineage transport that delivers to ``lineage serve`` and never loses an event.

The contract of :class:`SpoolingTransport`:

* ``emit`` first writes the event to the spool (:mod:`lineage.airflow.spool`: one NDJSON line,
  fsynced, in a file this process owns under ``spool_dir``), then POSTs it to
  ``{url}/api/v1/lineage``.  A 2xx marks it delivered.  So a crash, a kill or a flush timeout
  at any point leaves every undelivered event on disk, and a replay sends it; the store keeps
  one copy of an event however often it arrives (it deduplicates by canonical hash).
* Only **our server's 400 naming a field** (``{"code": 400, "errors": [{"field": ...}]}``), or
  its 413 in that shape (the event exceeds ``LINEAGE_MAX_BODY_BYTES``: it can never fit, and
  would stall every replay behind it), is a rejection: the event is put aside in
  ``rejected-<date>.ndjson`` with the reason, never resent.  Everything else — connection errors, timeouts, 5xx, 401/403 (a missing, wrong,
  revoked or unscoped token), a proxy's 413, 429, a proxy's answer of any kind — leaves the event
  pending, and :class:`~lineage.airflow.spool.Backoff` spaces out the next attempts
  exponentially (``retry_base`` .. ``retry_cap`` seconds); while backing off, events are only
  spooled.  A proxy's 413 concerns one event's size: it stays pending but neither starts the
  backoff nor holds up the events after it.
* Replay happens on its own: after an event is delivered, up to ``replay_limit`` pending events
  of other (dead or finished) processes are replayed — on the background thread when
  asynchronous, so the task does not wait.  ``lineage spool replay`` does the same for a cron
  job or a DAG, and ``lineage spool status`` counts what is pending and rejected.
* The token is ``api_key``, or ``auth: {type: api_key, apiKey: ...}`` as openlineage-python's
  HTTP transport spells it — which is also what the Airflow provider puts there when the
  token lives in an Airflow connection (``auth: {type: airflow_connection_api_key}``).  It is
  sent as ``Authorization: Bearer`` and never logged.
* ``emit`` never raises.  If the spool cannot be written (full, read-only), the event is still
  sent; if that fails too it is logged at ERROR with its full JSON, so it is not lost silently.
  Emission never fails a task.
* With ``asynchronous: true`` ``emit`` spools the event and queues it; a background thread
  sends it, and ``close`` — run at process exit — waits up to ``flush_timeout`` seconds.
  Whatever is not delivered by then is already in the spool.  It is used only when the
  provider emits in-process (``[openlineage] execute_in_thread = True``); under the provider's
  default fork-per-event the transport stays synchronous, because a forked emitter exits
  without running exit handlers.

Configure it in Airflow with::

    AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD=true
    AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "lineage.airflow.transport.SpoolingTransport",
                                      "url": "http://127.0.0.1:5000", "spool_dir": "/var/lineage/spool",
                                      "asynchronous": true, "auth": {"type": "api_key", "apiKey": "lin_..."}}'

or keep the whole transport, token included, in an Airflow connection (see docs/airflow.md).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import attr
import httpx
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Config, Transport

from lineage.airflow.spool import DELIVERED, Backoff, Entry, Outcome, Spool, count_lines, fork_safe, put_aside, replay
from lineage.config import api_url

log = logging.getLogger(__name__)

ENDPOINT = "api/v1/lineage"
MAX_UNSENT = 10_000  # pending events a process remembers to retry itself (all are on disk anyway)


@attr.define
class SpoolingConfig(Config):
    url: str = "http://127.0.0.1:5000"
    endpoint: str = ENDPOINT
    spool_dir: str | None = None  # default: LINEAGE_HOME/spool
    timeout: float = 5.0
    api_key: str | None = attr.field(default=None, repr=False)
    # Deliver from a background thread so a task never waits on the server.  Queued events are
    # already spooled; see the module docstring for when it is safe.
    asynchronous: bool = False
    flush_timeout: float = 10.0
    retry_base: float = 1.0  # first backoff after a failure, doubled per consecutive failure
    retry_cap: float = 60.0
    replay_limit: int = 100  # pending events replayed after each delivered one (bounded work)

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> "SpoolingConfig":
        known = {f.name for f in attr.fields(cls)}
        # `auth` is openlineage-python's spelling of the token: {"type": "api_key", "apiKey": "..."}
        unknown = set(params) - known - {"type", "auth"}
        if unknown:
            raise ValueError(f"SpoolingTransport: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        values = {k: v for k, v in params.items() if k in known}
        if params.get("auth") is not None:
            values["api_key"] = _api_key_from_auth(params["auth"], values.get("api_key"))
        for key in ("timeout", "flush_timeout", "retry_base", "retry_cap"):
            if key in values:
                values[key] = float(values[key])
        if "replay_limit" in values:
            values["replay_limit"] = int(values["replay_limit"])
        if isinstance(values.get("asynchronous"), str):
            values["asynchronous"] = values["asynchronous"].strip().lower() in ("1", "true", "yes")
        return cls(**values)


def classify(response: httpx.Response) -> Outcome:
    """2xx delivered; our own 400 naming a field rejected; anything else pending (retry)."""
    status = response.status_code
    if 200 <= status < 300:
        return DELIVERED
    detail = f"HTTP {status}: {response.text[:300]}".replace("\n", " ")
    if status in (400, 413) and _names_a_field(response, status):
        # Our own 413 is a verdict too: this event exceeds the server's LINEAGE_MAX_BODY_BYTES and
        # would stall every replay (and keep every worker backing off) if it stayed pending.
        # Put aside, it is counted by `lineage spool status` and can be re-sent with
        # `lineage ingest` once the limit is raised.  A proxy's 413 (not our shape) stays pending.
        return Outcome("rejected", detail, status)
    return Outcome("pending", detail, status)


def _names_a_field(response: httpx.Response, code: int = 400) -> bool:
    """Our error shape: ``{"code": 400, "message": ..., "errors": [{"field": ..., ...}]}`` (or 413).

    A proxy's 400 (an HTML page, or JSON of another shape) is not a verdict on the event."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict) or body.get("code") != code or not isinstance(body.get("message"), str):
        return False
    errors = body.get("errors")
    return isinstance(errors, list) and bool(errors) and all(
        isinstance(e, dict) and isinstance(e.get("field"), str) and e["field"] for e in errors)


class HttpSender:
    """POST one event to ``lineage serve``; one keep-alive client per process."""

    def __init__(self, url: str, endpoint: str = ENDPOINT, api_key: str | None = None, timeout: float = 5.0) -> None:
        self.url = api_url(url, endpoint)
        self.api_key = api_key
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._pid = 0

    def _http(self) -> httpx.Client:
        if self._client is None or self._pid != os.getpid():  # a client inherited across fork is not reused
            self._client = httpx.Client(timeout=self.timeout)
            self._pid = os.getpid()
        return self._client

    def __call__(self, body: str) -> Outcome:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            response = self._http().post(self.url, content=body.encode(), headers=headers)
        except Exception as exc:  # any failure to talk to the server: pending
            return Outcome("pending", f"{type(exc).__name__}: {exc}")
        return classify(response)

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None


class SpoolingTransport(Transport):
    """Spool first, then HTTP to ``lineage serve``; replay what is pending once the server answers."""

    kind = "lineage_spool"
    config_class = SpoolingConfig

    def __init__(self, config: SpoolingConfig) -> None:
        self.config = config
        self.spool_dir = Path(config.spool_dir).expanduser() if config.spool_dir else _default_spool_dir()
        self.spool = Spool(self.spool_dir)
        self.backoff = Backoff(self.spool_dir, config.retry_base, config.retry_cap)
        self.sender = HttpSender(config.url, config.endpoint, config.api_key, config.timeout)
        self.delivered = 0
        self.spooled = 0  # events left pending by this transport (in the spool, to be replayed)
        self.rejected = 0
        self.replayed = 0
        # Events of this process left pending: its own spool file is locked against replayers,
        # so the process retries them itself once the server answers again.
        self._unsent: list[tuple[Entry, str]] = []
        self._queue: queue.SimpleQueue | None = None
        self._worker: threading.Thread | None = None
        self._worker_pid = 0
        self._lock = threading.Lock()
        fork_safe(self)

    def emit(self, event: Any) -> None:
        try:
            body = Serde.to_json(event)
        except Exception:  # an event the client cannot serialise: nothing to keep, say so
            log.error("OpenLineage event could not be serialised; dropped: %r", event, exc_info=True)
            return
        entry = self._write_ahead(body)
        if self.config.asynchronous and _async_is_safe():
            self._enqueue(entry, body)
            return
        self._deliver(entry, body)

    def _write_ahead(self, body: str) -> Entry | None:
        try:
            return self.spool.append(body)
        except Exception as exc:  # full or read-only disk: still try to send it
            log.error("cannot write the lineage spool in %s (%s); sending without it", self.spool_dir, exc)
            return None

    def _deliver(self, entry: Entry | None, body: str) -> None:
        try:
            if entry is not None and not self.backoff.due():
                self.spooled += 1  # backing off: the event waits in the spool for a replay
                self._keep_unsent(entry, body)
                return
            outcome = self.sender(body)
            if outcome.delivered:
                self.delivered += 1
                if entry is not None:
                    self.spool.resolved(entry)
                self.backoff.succeeded()
                self._retry_unsent()
                self._replay_some()
                return
            if outcome.rejected:
                self.rejected += 1
                self._put_aside(entry, body, outcome)
                return
            if outcome.status != 413:  # a proxy refusing one event's size says nothing of the server
                self.backoff.failed()
            self.spooled += 1
            self._keep_unsent(entry, body)
            if entry is None:
                log.error("OpenLineage event could neither be delivered (%s) nor spooled to %s; event: %s",
                          outcome.reason, self.spool_dir, body)
            elif outcome.status in (401, 403):
                log.warning("lineage server refused the transport's token (%s); event kept in %s — configure a valid "
                            "emitter token (api_key); `lineage spool replay` sends it", outcome.reason, entry.path)
            else:
                log.warning("lineage server unavailable (%s); event kept in %s — replayed at the next emit or by "
                            "`lineage spool replay`", outcome.reason, entry.path)
        except Exception:  # emission never fails a task
            log.error("lineage transport failed on an event; it stays in the spool if it got there: %s", body, exc_info=True)

    def _put_aside(self, entry: Entry | None, body: str, outcome: Outcome) -> None:
        try:
            where = put_aside(self.spool_dir, "rejected", body.encode(), outcome.reason)
            if entry is not None:
                self.spool.resolved(entry)
            log.warning("lineage server rejected the event (%s); kept in %s for inspection", outcome.reason, where)
        except Exception:
            log.error("lineage server rejected the event (%s) and it could not be put aside: %s", outcome.reason, body)

    def _keep_unsent(self, entry: Entry | None, body: str) -> None:
        with self._lock:
            if entry is not None and len(self._unsent) < MAX_UNSENT:  # beyond that, the spool file has them
                self._unsent.append((entry, body))

    def _retry_unsent(self) -> None:
        """Resend this process's pending events (at most ``replay_limit``), oldest first."""
        with self._lock:
            batch, self._unsent = self._unsent[: self.config.replay_limit], self._unsent[self.config.replay_limit:]
        kept: list[tuple[Entry, str]] = []  # too large for a proxy: pending, but not in the way of the rest
        for i, (entry, body) in enumerate(batch):
            outcome = self.sender(body)
            if outcome.delivered:
                self.spool.resolved(entry)
                self.spooled -= 1
                self.delivered += 1
            elif outcome.rejected:
                self.spooled -= 1
                self.rejected += 1
                self._put_aside(entry, body, outcome)
            elif outcome.status == 413:
                kept.append((entry, body))
            else:  # down again: keep the rest, in order
                self.backoff.failed()
                with self._lock:
                    self._unsent[:0] = kept + batch[i:]
                return
        if kept:
            with self._lock:
                self._unsent[:0] = kept

    def _replay_some(self) -> None:
        """Bounded replay of other processes' pending events, once the server has just answered."""
        if self.config.replay_limit <= 0:
            return
        try:
            # Bounded in count and in time: a slow server must not hold the emitting task.
            result = replay(self.spool_dir, self.sender, limit=self.config.replay_limit,
                            deadline=time.monotonic() + self.config.timeout)
        except Exception:
            log.warning("lineage spool replay failed; `lineage spool replay` retries it", exc_info=True)
            return
        self.replayed += result.delivered
        if result.stopped is not None:
            self.backoff.failed()
        if result.malformed:
            log.warning("lineage spool: malformed line(s) put aside in %s: %s", self.spool_dir, ", ".join(result.malformed))

    # -- asynchronous delivery ----------------------------------------------------------------
    def _enqueue(self, entry: Entry | None, body: str) -> None:
        with self._lock:
            if self._worker is None or self._worker_pid != os.getpid():  # first use in this process
                self._queue = queue.SimpleQueue()
                self._worker = threading.Thread(target=self._drain, args=(self._queue,), name="lineage-transport", daemon=True)
                self._worker_pid = os.getpid()
                self._worker.start()
                # Task processes end through atexit handlers; multiprocessing workers (the
                # provider's DAG-event pool) run only their own finalizers. Register with both.
                atexit.register(self.close)
                multiprocessing.util.Finalize(None, self.close, exitpriority=100)
        self._queue.put((entry, body))  # type: ignore[union-attr]

    def _drain(self, q: queue.SimpleQueue) -> None:
        while True:
            try:
                # Idle with events of its own pending, wake up to retry them: a long-lived
                # process (the scheduler's DAG-event worker) may emit nothing more for hours,
                # and its spool file stays locked against `lineage spool replay` while it lives.
                item = q.get(timeout=self.config.retry_base if self._unsent else None)
            except queue.Empty:
                if self.backoff.due():
                    self._retry_unsent()
                    if not self._unsent:
                        self.backoff.succeeded()
                continue
            if item is None:
                return
            self._deliver(*item)

    def close(self, timeout: float = -1) -> bool:
        """Wait up to ``flush_timeout`` for queued events; what is left stays in the spool."""
        worker, q = self._worker, self._queue
        finished = True
        if worker is not None and q is not None and self._worker_pid == os.getpid():
            self._worker = None
            q.put(None)
            worker.join(self.config.flush_timeout if timeout is None or timeout < 0 else timeout)
            finished = not worker.is_alive()
            if not finished:
                log.warning("lineage transport: events not delivered within %.1fs stay in %s for replay",
                            self.config.flush_timeout, self.spool_dir)
        if finished:  # a worker still running may yet mark its event: leave it the spool and client
            self.spool.close()
            self.sender.close()
        return True

    def __str__(self) -> str:
        return f"<SpoolingTransport url={self.config.url} spool={self.spool_dir}>"


def _api_key_from_auth(auth: Any, api_key: str | None) -> str | None:
    """The token in openlineage-python's ``auth`` block (``{type: api_key, apiKey: ...}``)."""
    if not isinstance(auth, dict) or auth.get("type") != "api_key":
        kind = auth.get("type") if isinstance(auth, dict) else type(auth).__name__
        raise ValueError(f"SpoolingTransport: auth type `{kind}` is not supported; use {{\"type\": \"api_key\", \"apiKey\": \"lin_...\"}}")
    key = auth.get("apiKey", auth.get("api_key"))
    if not isinstance(key, str) or not key.strip():
        raise ValueError("SpoolingTransport: auth.apiKey is missing or empty")
    if api_key and api_key != key.strip():
        raise ValueError("SpoolingTransport: api_key and auth.apiKey disagree; give the token once")
    return key.strip()


def _async_is_safe() -> bool:
    """Asynchronous delivery needs the provider to emit in-process (``execute_in_thread``).

    The provider's default forks a child per event and ends it with ``os._exit``, which skips
    every exit handler: events still queued there would be lost, so deliver synchronously.
    """
    try:
        from airflow.providers.openlineage import conf
    except ImportError:  # not inside Airflow: the caller owns the process and calls close()
        return True
    try:
        return bool(conf.execute_in_thread())
    except Exception:
        return False


def _default_spool_dir() -> Path:
    from lineage.config import Settings

    return Settings().spool_dir


def pending_files(spool_dir: Path) -> list[Path]:
    return sorted(Path(spool_dir).glob("pending-*.ndjson"))


__all__ = ["HttpSender", "SpoolingConfig", "SpoolingTransport", "classify", "count_lines", "pending_files"]
