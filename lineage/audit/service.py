"""The server's part in the ledger: seal in the background, checkpoint on a schedule if asked.

:func:`background` starts one daemon thread per app (``lineage serve`` calls it on start-up):

* it seals every ``LINEAGE_AUDIT_SEAL_INTERVAL`` seconds (default 1; ``0`` turns the server's
  sealing off, for a deployment that runs ``lineage audit seal`` from cron or a DAG instead).
  Sealing reads committed rows and appends to the ledger tables only: ingest never waits for it.
* it signs a checkpoint every ``LINEAGE_AUDIT_CHECKPOINT_INTERVAL`` seconds (default 0: off),
  with the key of :class:`lineage.audit.checkpoint.AuditPaths`, when the head has moved.

A failure is logged and retried at the next tick; nothing is lost, since unsealed entries stay
queued.  Several server processes may each run one: the sealer's advisory lock lets one seal.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from lineage.audit import checkpoint as cp
from lineage.audit.seal import seal_all

log = logging.getLogger("lineage.audit")


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        from lineage.errors import ConfigError

        raise ConfigError(f"{name} must be a number of seconds, not `{raw}`") from None
    return max(value, 0.0)


class Background:
    def __init__(self, db, home, seal_every: float, checkpoint_every: float) -> None:
        self._db, self._home = db, home
        self._seal_every, self._checkpoint_every = seal_every, checkpoint_every
        self._stop = threading.Event()
        self._last_checkpoint = 0.0
        self._signed_head: int | None = None
        self._thread = threading.Thread(target=self._loop, name="lineage-ledger", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> "Background":
        if self._seal_every or self._checkpoint_every:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        tick = min(t for t in (self._seal_every, self._checkpoint_every) if t)
        while not self._stop.wait(tick):
            try:
                with self._db.connection() as conn:
                    seal_all(conn)
                if self._checkpoint_every and time.monotonic() - self._last_checkpoint >= self._checkpoint_every:
                    self._checkpoint()
            except Exception:  # noqa: BLE001 - retried next tick; the queue keeps every entry
                log.exception("ledger sealing or checkpoint failed; retrying")

    def _checkpoint(self) -> None:
        paths = cp.AuditPaths.from_env(self._home)
        key = cp.load_or_create_key(paths)
        with self._db.connection() as conn:
            signed = cp.make(conn, key)
        self._last_checkpoint = time.monotonic()
        if signed is not None and signed["block"] != self._signed_head:
            cp.write(paths, signed)
            self._signed_head = signed["block"]
            log.info("ledger checkpoint %s", signed)


def background(settings, db) -> Background:
    """Start the ledger's background work for an app over ``db`` (see the module docstring)."""
    return Background(db, settings.home, _seconds("LINEAGE_AUDIT_SEAL_INTERVAL", 1.0),
                      _seconds("LINEAGE_AUDIT_CHECKPOINT_INTERVAL", 0.0)).start()
