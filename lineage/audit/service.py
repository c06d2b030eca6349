"""The server's part in the ledger: seal in the background, checkpoint on a schedule if asked.

:func:`background` starts the sealer for an app (``lineage serve`` calls it on start-up):
a thread of the server by default (``LINEAGE_AUDIT_SEALER=thread``), or a helper process
(``process``: a fork of a fork server that preloads the modules, given the store's URL through
a pipe, never argv), which keeps hashing off the server's GIL altogether.  The thread yields
the GIL every 16 records it hashes, so request threads do not queue behind it for the
interpreter's 5 ms switch interval after every database round trip; ``benchmarks/audit.py
--sealer`` measures both.

* It seals every ``LINEAGE_AUDIT_SEAL_INTERVAL`` seconds (default 1; ``0`` turns the server's
  sealing off, for a deployment that runs ``lineage audit seal`` from cron or a DAG instead).
  Sealing reads committed rows and appends to the ledger tables only: ingest never waits on it.
* It signs a checkpoint every ``LINEAGE_AUDIT_CHECKPOINT_INTERVAL`` seconds (default 0: off),
  with the key of :class:`lineage.audit.checkpoint.AuditPaths`, when the head has moved.

A failure is logged and retried at the next tick; nothing is lost, since unsealed entries stay
queued.  Several server processes may each run one: the sealer's advisory lock lets one seal.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path

log = logging.getLogger("lineage.audit")


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        from lineage.errors import ConfigError

        raise ConfigError(f"{name} must be a number of seconds, not `{raw}`") from None
    return max(value, 0.0)


def _run(url: str, home: Path, seal_every: float, checkpoint_every: float, stop) -> None:
    """The loop: seal (and checkpoint) until ``stop`` is set or the parent process goes.
    Nothing here raises: an unreachable store or a failed seal is logged and tried again."""
    parent = os.getppid() if multiprocessing.parent_process() is not None else None
    if parent is not None:
        os.nice(19)  # a helper process yields the CPU to the server and ingest: sealing lags, ingest does not
    from lineage.audit import checkpoint as cp
    from lineage.audit.seal import seal_all
    from lineage.config import redact_text
    from lineage.store.db import Database

    tick = min(t for t in (seal_every, checkpoint_every) if t)
    db, last_checkpoint, signed_head = None, 0.0, None

    def once(final: bool = False) -> None:
        nonlocal db, last_checkpoint, signed_head
        if db is None:
            # Never server-prepared: a few statements a second gain nothing from it, and this
            # way the sealer works behind a transaction-mode pooler whatever the settings say.
            db = Database(url, min_size=1, max_size=1, timeout=3.0, prepare_threshold=None)
        with db.connection() as conn:
            seal_all(conn)
        if checkpoint_every and not final and time.monotonic() - last_checkpoint >= checkpoint_every:
            paths = cp.AuditPaths.from_env(home)
            key = cp.load_or_create_key(paths)
            with db.connection() as conn:
                signed = cp.make(conn, key)
            last_checkpoint = time.monotonic()
            if signed is not None and signed["block"] != signed_head:
                cp.write(paths, signed)
                signed_head = signed["block"]
                log.info("ledger checkpoint %s", signed)

    try:
        while not stop.wait(tick) and (parent is None or os.getppid() == parent):
            try:
                once()
            except Exception as exc:  # noqa: BLE001 - retried next tick; the queue keeps every entry
                log.warning("ledger sealing or checkpoint failed, retrying: %s", redact_text(str(exc), url))
        try:
            once(final=True)  # what was committed before the stop is sealed too
        except Exception as exc:  # noqa: BLE001
            log.warning("last ledger seal before stopping failed (the queue keeps it): %s", redact_text(str(exc), url))
    finally:
        if db is not None:
            db.close()


class _Thread:
    """The same loop as :func:`_run`, in a daemon thread of this process."""

    def __init__(self, url: str, home: Path, seal_every: float, checkpoint_every: float) -> None:
        import threading

        self._stop = threading.Event()
        self._thread = None
        if seal_every or checkpoint_every:
            self._thread = threading.Thread(target=_run, args=(url, Path(home), seal_every, checkpoint_every, self._stop),
                                            name="lineage-ledger", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "_Thread":
        if self._thread is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=30)


class _Process:
    def __init__(self, url: str, home: Path, seal_every: float, checkpoint_every: float) -> None:
        # A fork server: started once per server process (it preloads the modules), then each
        # helper is a fork of it, not of the server's threads and pools, in milliseconds.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["lineage.audit.seal", "lineage.audit.checkpoint", "lineage.store.db"])
        self._stop = ctx.Event()
        self._proc = None
        if seal_every or checkpoint_every:
            self._proc = ctx.Process(target=_run, args=(url, Path(home), seal_every, checkpoint_every, self._stop),
                                     name="lineage-ledger", daemon=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> "_Process":
        if self._proc is not None:
            self._proc.start()
        return self

    def stop(self) -> None:
        """Stop after a last seal of what is committed (waits up to 30 s, then terminates)."""
        if self._proc is None or not self._proc.is_alive():
            return
        self._stop.set()
        self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)


def Background(url: str, home: Path, seal_every: float, checkpoint_every: float, mode: str = "thread"):
    """The sealer (and checkpointer) as a thread or a helper process; call ``.start()``."""
    if mode not in ("thread", "process"):
        from lineage.errors import ConfigError

        raise ConfigError(f"LINEAGE_AUDIT_SEALER must be `thread` or `process`, not `{mode}`")
    return (_Thread if mode == "thread" else _Process)(url, home, seal_every, checkpoint_every)


def background(settings, db):
    """Start the ledger's background work for an app over ``db`` (see the module docstring)."""
    return Background(db.url, settings.home, _seconds("LINEAGE_AUDIT_SEAL_INTERVAL", 1.0),
                      _seconds("LINEAGE_AUDIT_CHECKPOINT_INTERVAL", 0.0),
                      os.environ.get("LINEAGE_AUDIT_SEALER", "thread")).start()
