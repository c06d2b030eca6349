"""An OpenLineage transport that delivers to ``lineage serve`` and never loses an event.

The contract of :class:`SpoolingTransport`:

* ``emit`` POSTs the event to ``{url}/api/v1/lineage``.  A 2xx answer means delivered.
* Any other outcome — connection refused, timeout, a 5xx, a 4xx — appends the event as one
  NDJSON line to a spool file under ``spool_dir`` (``LINEAGE_HOME/spool`` by default) and logs a
  warning naming the file.  Only events the server found *wrong in themselves* (400, 413, 415,
  422: see :data:`REJECTED`) go to ``rejected-*.ndjson``, so a replay does not retry them
  blindly; everything else goes to ``pending-*.ndjson`` and is replayed.
* A 401 or 403 is about the *credential*, not the event (no token, a wrong, expired or revoked
  one, a role or namespace scope it lacks): the event is kept in the pending spool and the
  warning says to configure a valid token.  ``lineage ingest SPOOLFILE`` with a valid token
  (``--token`` or ``LINEAGE_TOKEN``) replays it; the store deduplicates, so every event is
  stored exactly once however often it is replayed.  A proxy's 429 or 503 is pending too.
* The token is ``api_key``, or ``auth: {type: api_key, apiKey: ...}`` as openlineage-python's
  HTTP transport spells it — which is also what the Airflow provider puts there when the
  token lives in an Airflow connection (``auth: {type: airflow_connection_api_key}``).  It is
  sent as ``Authorization: Bearer`` and never logged.
* ``emit`` never raises.  If even the spool cannot be written, the event is logged at ERROR
  with its full JSON, so it is still not lost silently.  Emission never fails a task.
* With ``asynchronous: true`` ``emit`` only queues the event; a background thread delivers
  it (or spools it), and ``close`` — run at process exit — flushes the queue for up to
  ``flush_timeout`` seconds and spools whatever is left.  This takes the server's round trip
  off the task's critical path.  It is used only when the provider emits in-process
  (``[openlineage] execute_in_thread = True``); under the provider's default fork-per-event
  the transport stays synchronous, because a forked emitter exits without running exit
  handlers.

``lineage ingest FILE`` replays a spool file; :func:`claim_pending` and :func:`mark_replayed`
let a replayer take files atomically while writers may still be appending.  Replays are safe
to repeat: the store identifies an event by the hash of its canonical form.

Configure it in Airflow with::

    AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD=true
    AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "lineage.airflow.transport.SpoolingTransport",
                                      "url": "http://127.0.0.1:5000", "spool_dir": "/var/lineage/spool",
                                      "asynchronous": true, "auth": {"type": "api_key", "apiKey": "lin_..."}}'

or keep the whole transport, token included, in an Airflow connection (see docs/airflow.md).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import multiprocessing.util
import os
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attr
import httpx
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Config, Transport

from lineage.config import api_url

log = logging.getLogger(__name__)

ENDPOINT = "api/v1/lineage"
# Answers that say the event itself is wrong: resending it unchanged can never succeed.
REJECTED = frozenset({400, 413, 415, 422})
# Answers about the credential: the event is fine, the token is not (yet).
UNAUTHORIZED = frozenset({401, 403})


@attr.define
class SpoolingConfig(Config):
    url: str = "http://127.0.0.1:5000"
    endpoint: str = ENDPOINT
    spool_dir: str | None = None  # default: LINEAGE_HOME/spool
    timeout: float = 5.0
    api_key: str | None = attr.field(default=None, repr=False)
    # Deliver from a background thread so a task never waits on the server.  Queued events are
    # flushed (or spooled) when the process exits; see the module docstring for when it is safe.
    asynchronous: bool = False
    flush_timeout: float = 10.0

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
        for key in ("timeout", "flush_timeout"):
            if key in values:
                values[key] = float(values[key])
        if isinstance(values.get("asynchronous"), str):
            values["asynchronous"] = values["asynchronous"].strip().lower() in ("1", "true", "yes")
        return cls(**values)


class SpoolingTransport(Transport):
    """HTTP to ``lineage serve`` first; a local NDJSON spool whenever that fails."""

    kind = "lineage_spool"
    config_class = SpoolingConfig

    def __init__(self, config: SpoolingConfig) -> None:
        self.config = config
        self.spool_dir = Path(config.spool_dir).expanduser() if config.spool_dir else _default_spool_dir()
        self.delivered = 0
        self.spooled = 0
        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._queue: queue.SimpleQueue | None = None
        self._worker: threading.Thread | None = None
        self._worker_pid = 0
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        """One keep-alive client per process (a client inherited across ``fork`` is not reused)."""
        if self._client is None or self._client_pid != os.getpid():
            self._client = httpx.Client(timeout=self.config.timeout)
            self._client_pid = os.getpid()
        return self._client

    def emit(self, event: Any) -> None:
        body = Serde.to_json(event)
        if self.config.asynchronous and _async_is_safe():
            self._enqueue(body)
            return
        self._deliver(body)

    def _deliver(self, body: str) -> None:
        reason, status = self._post(body)
        if reason is None:
            self.delivered += 1
            return
        self._spool(body, reason, rejected=status in REJECTED, unauthorized=status in UNAUTHORIZED)

    def _post(self, body: str) -> tuple[str | None, int | None]:
        """``(None, status)`` when delivered; otherwise why not, and the HTTP status if there was one."""
        try:
            headers = {"Content-Type": "application/json"}
            if self.config.api_key:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
            url = api_url(self.config.url, self.config.endpoint)
            response = self._http().post(url, content=body.encode(), headers=headers)
        except Exception as exc:  # any failure to talk to the server means: spool it
            return f"{type(exc).__name__}: {exc}", None
        if 200 <= response.status_code < 300:
            return None, response.status_code
        detail = response.text[:300].replace("\n", " ")
        return f"HTTP {response.status_code}: {detail}", response.status_code

    def _spool(self, body: str, reason: str, *, rejected: bool, unauthorized: bool = False) -> None:
        kind = "rejected" if rejected else "pending"
        path = self.spool_dir / f"{kind}-{datetime.now(timezone.utc):%Y%m%d}.ndjson"
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            _append_line(path, body)
        except Exception:
            log.error("OpenLineage event could neither be delivered (%s) nor spooled to %s; event: %s", reason, path, body, exc_info=True)
            return
        self.spooled += 1
        if unauthorized:
            log.warning(
                "lineage server refused the transport's token (%s); event kept in %s — configure a valid emitter token "
                "(api_key) and replay with `LINEAGE_TOKEN=... lineage ingest %s`", reason, path, path
            )
        elif rejected:
            log.warning("lineage server rejected the event (%s); kept in %s for inspection", reason, path)
        else:
            log.warning(
                "lineage server unavailable (%s); event spooled to %s — replay with `lineage ingest %s`", reason, path, path
            )

    # -- asynchronous delivery ----------------------------------------------------------------
    def _enqueue(self, body: str) -> None:
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
        self._queue.put(body)  # type: ignore[union-attr]

    def _drain(self, q: queue.SimpleQueue) -> None:
        while True:
            body = q.get()
            if body is None:
                return
            try:
                self._deliver(body)
            except Exception:  # the worker must outlive any single event
                log.error("lineage transport worker failed on an event: %s", body, exc_info=True)

    def close(self, timeout: float = -1) -> bool:
        """Flush queued events (up to ``flush_timeout``), spool whatever is left, close HTTP."""
        worker, q = self._worker, self._queue
        if worker is not None and q is not None and self._worker_pid == os.getpid():
            self._worker = None
            q.put(None)
            worker.join(self.config.flush_timeout if timeout is None or timeout < 0 else timeout)
            left = []
            while True:
                try:
                    body = q.get_nowait()
                except queue.Empty:
                    break
                if body is not None:
                    left.append(body)
            for body in left:  # not delivered in time: never dropped, spooled
                self._spool(body, "not delivered before the process exited", rejected=False)
        if self._client is not None and self._client_pid == os.getpid():
            self._client.close()
        self._client = None
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


def _append_line(path: Path, line: str) -> None:
    """Append one line under an exclusive lock: tasks in many processes share one spool file."""
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def pending_files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("pending-*.ndjson"))


def claim_pending(spool_dir: Path) -> list[Path]:
    """Rename every pending file to ``*.replaying`` (under its lock) and return the claimed files.

    Writers open the spool by name for each event, so once a file is renamed new events start a
    fresh pending file; taking the lock first means no half-written line is claimed.
    """
    claimed = []
    for path in pending_files(spool_dir):
        target = path.with_suffix(".replaying")
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if target.exists():  # an earlier replay was interrupted: keep both, in order
                with target.open("ab") as out, path.open("rb") as src:
                    out.write(src.read())
                path.unlink()
            else:
                path.rename(target)
        finally:
            os.close(fd)
        claimed.append(target)
    claimed.extend(p for p in sorted(spool_dir.glob("*.replaying")) if p not in claimed)
    return claimed


def mark_replayed(path: Path) -> Path:
    """Move a replayed file to ``spool/replayed/`` so the next replay does not send it again."""
    done = path.parent / "replayed"
    done.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    target = done / f"{path.stem}-{stamp}.ndjson"
    path.rename(target)
    return target


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())
