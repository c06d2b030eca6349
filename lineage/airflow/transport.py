"""An OpenLineage transport that delivers to ``lineage serve`` and never loses an event.

The contract of :class:`SpoolingTransport`:

* ``emit`` POSTs the event to ``{url}/api/v1/lineage``.  A 2xx answer means delivered.
* Any other outcome — connection refused, timeout, a 5xx, a 4xx — appends the event as one
  NDJSON line to a spool file under ``spool_dir`` (``LINEAGE_HOME/spool`` by default) and logs a
  warning naming the file.  Events the server *rejected* (4xx) go to ``rejected-*.ndjson`` so a
  replay does not retry them blindly; the rest go to ``pending-*.ndjson``.
* ``emit`` never raises.  If even the spool cannot be written, the event is logged at ERROR
  with its full JSON, so it is still not lost silently.  Emission never fails a task.

``lineage ingest FILE`` replays a spool file; :func:`claim_pending` and :func:`mark_replayed`
let a replayer take files atomically while writers may still be appending.  Replays are safe
to repeat: the store identifies an event by the hash of its canonical form.

Configure it in Airflow with::

    AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "lineage.airflow.transport.SpoolingTransport",
                                      "url": "http://127.0.0.1:5000", "spool_dir": "/var/lineage/spool"}'
"""

from __future__ import annotations

import fcntl
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attr
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Config, Transport

log = logging.getLogger(__name__)

ENDPOINT = "api/v1/lineage"


@attr.define
class SpoolingConfig(Config):
    url: str = "http://127.0.0.1:5000"
    endpoint: str = ENDPOINT
    spool_dir: str | None = None  # default: LINEAGE_HOME/spool
    timeout: float = 5.0
    api_key: str | None = attr.field(default=None, repr=False)

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> "SpoolingConfig":
        known = {f.name for f in attr.fields(cls)}
        unknown = set(params) - known - {"type"}
        if unknown:
            raise ValueError(f"SpoolingTransport: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        values = {k: v for k, v in params.items() if k in known}
        if "timeout" in values:
            values["timeout"] = float(values["timeout"])
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

    def emit(self, event: Any) -> None:
        body = Serde.to_json(event)
        reason, rejected = self._post(body)
        if reason is None:
            self.delivered += 1
            return
        self._spool(body, reason, rejected=rejected)

    def _post(self, body: str) -> tuple[str | None, bool]:
        """``(None, False)`` when delivered; otherwise why not, and whether the server rejected it."""
        try:
            import httpx

            headers = {"Content-Type": "application/json"}
            if self.config.api_key:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
            url = f"{self.config.url.rstrip('/')}/{self.config.endpoint.lstrip('/')}"
            response = httpx.post(url, content=body.encode(), headers=headers, timeout=self.config.timeout)
        except Exception as exc:  # any failure to talk to the server means: spool it
            return f"{type(exc).__name__}: {exc}", False
        if 200 <= response.status_code < 300:
            return None, False
        detail = response.text[:300].replace("\n", " ")
        return f"HTTP {response.status_code}: {detail}", 400 <= response.status_code < 500

    def _spool(self, body: str, reason: str, *, rejected: bool) -> None:
        kind = "rejected" if rejected else "pending"
        path = self.spool_dir / f"{kind}-{datetime.now(timezone.utc):%Y%m%d}.ndjson"
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            _append_line(path, body)
        except Exception:
            log.error("OpenLineage event could neither be delivered (%s) nor spooled to %s; event: %s", reason, path, body, exc_info=True)
            return
        self.spooled += 1
        log.warning(
            "lineage server unavailable (%s); event spooled to %s — replay with `lineage ingest %s`", reason, path, path
        )

    def close(self, timeout: float = -1) -> bool:
        return True

    def __str__(self) -> str:
        return f"<SpoolingTransport url={self.config.url} spool={self.spool_dir}>"


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
