"""A durable spool of OpenLineage events: written before sending, cleared only once delivered.

The contract:

* **Write-ahead.** :meth:`Spool.append` writes each event as one NDJSON line to a file this
  process owns (``pending-<time>-<host>-<pid>-<rand>.ndjson``), then ``fsync``\\ s it, *before*
  the caller sends it.  A crash at any later point leaves the event on disk.
* **Marked, not rewritten.** :meth:`Spool.resolved` appends the line's key (a hash of its bytes)
  to the file's sidecar ``<file>.done`` once the server answered 2xx, or once the event was put
  aside as rejected.  Marks are not fsynced on purpose: a lost mark only means a replay sends
  the event again, and the store keeps one copy of an event however often it is sent (it
  deduplicates by the hash of the canonical form).  So a crash between delivery and mark costs
  one duplicate *send*, never a duplicate *row*, and never a lost event.
* **Owned files are locked.** The owning process holds an exclusive ``flock`` on its file for as
  long as it writes it; the kernel drops the lock when the process dies, however it dies
  (SIGKILL included).  A replayer takes files with a non-blocking lock, so it never touches a
  live writer's file and two replayers never send the same file at once.
* **Compaction.** When every line of its own file is resolved, the owner truncates the file and
  its sidecar (the file stays, still locked); at close an empty or fully resolved file is
  removed.  In the normal case — server up — the spool directory ends empty.
* **Replay** (:func:`replay`) walks the other files, oldest first, sends each unresolved line
  with the caller's ``send``, and removes a file once every line in it is resolved.  A line that
  is not a JSON object (a torn write, an edited file) is moved to ``malformed-<date>.ndjson``
  and reported, so it never stalls the lines after it.  An event the server *rejected* is
  moved to ``rejected-<date>.ndjson`` with its reason in ``rejected-<date>.log``.  Anything else
  (network error, 5xx, 401/403/429) stops the replay: the event stays pending and
  :class:`Backoff` spaces out the next attempts.  A proxy's 413 is about one event's size, so
  that event stays pending (counted in ``too_large``) and the replay goes on past it.
* Nothing here does HTTP: ``send`` returns an :class:`Outcome`; :mod:`lineage.airflow.transport`
  supplies the HTTP one.

Under the Celery or Kubernetes executor the spool must outlive the worker: put ``spool_dir`` on
a shared volume (a PersistentVolumeClaim, NFS with working ``flock``) or a sidecar's volume that
a ``lineage spool replay`` job drains (see docs/airflow.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

PENDING_GLOB = "pending-*.ndjson"
DONE_SUFFIX = ".done"


@dataclass(frozen=True)
class Outcome:
    """What became of one send: ``delivered``, ``rejected`` (never resend) or ``pending`` (retry)."""

    kind: str
    reason: str = ""
    status: int | None = None

    @property
    def delivered(self) -> bool:
        return self.kind == "delivered"

    @property
    def rejected(self) -> bool:
        return self.kind == "rejected"


DELIVERED = Outcome("delivered")


@dataclass(frozen=True)
class Entry:
    """Where an appended event sits: its file and its key there."""

    path: Path
    key: str


def line_key(line: bytes) -> str:
    return hashlib.blake2b(line.rstrip(b"\n"), digest_size=16).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d")


# A fork while another thread holds a spool's lock would leave the child's copy locked forever
# (the provider forks for DAG-level events): children start with fresh locks.
_LIVE: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _fresh_locks_after_fork() -> None:
    for obj in list(_LIVE):
        obj._lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks_after_fork)


def fork_safe(obj: Any) -> None:
    """Give ``obj._lock`` a fresh lock in every forked child."""
    _LIVE.add(obj)


class Spool:
    """The write-ahead spool of one process (threads share it; a forked child gets its own file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        fork_safe(self)
        self._fd: int | None = None
        self._path: Path | None = None
        self._pid = 0
        self._written = 0
        self._resolved = 0

    def _own_file(self) -> tuple[int, Path]:
        if self._fd is None or self._pid != os.getpid():
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"pending-{_now()}-{socket.gethostname()}-{os.getpid()}-{random.randrange(16**6):06x}.ndjson"
            path = self.directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process lives: replayers keep off
            _fsync_dir(self.directory)  # the file's name is durable before any event relies on it
            self._fd, self._path, self._pid, self._written, self._resolved = fd, path, os.getpid(), 0, 0
        return self._fd, self._path  # type: ignore[return-value]

    def append(self, body: str) -> Entry:
        """Write ``body`` durably as one line; raises ``OSError`` if the spool cannot be written."""
        data = body.rstrip("\n").encode() + b"\n"
        with self._lock:
            fd, path = self._own_file()
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except BaseException:
                # A short write (disk full) would leave a fragment without its newline, and the
                # next event appended would be glued to it and put aside as malformed: cut it
                # off, so the file holds only whole lines the caller knows to be spooled.
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise
            self._written += 1
            return Entry(path, line_key(data))

    def resolved(self, entry: Entry) -> None:
        """``entry`` needs no more sending (delivered, or put aside); compacts a fully resolved file."""
        with self._lock:
            done = entry.path.with_name(entry.path.name + DONE_SUFFIX)
            try:
                with open(done, "ab") as fh:
                    fh.write(entry.key.encode() + b"\n")
            except OSError:  # the mark is an optimisation: without it the event is re-sent, deduplicated
                return
            if entry.path != self._path or self._pid != os.getpid():
                return
            self._resolved += 1
            if self._resolved >= self._written and self._fd is not None:
                # Truncate the events first: a crash before the sidecar follows leaves marks of
                # nothing, which is harmless; the reverse order could orphan events.
                os.ftruncate(self._fd, 0)
                with open(done, "wb"):
                    pass
                self._written = self._resolved = 0

    def close(self) -> None:
        """Release this process's file: removed if nothing in it is pending, else left for replay."""
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                self._fd = None
                return
            fd, path = self._fd, self._path
            self._fd = self._path = None
            try:
                if self._resolved >= self._written and path is not None:
                    path.unlink(missing_ok=True)
                    path.with_name(path.name + DONE_SUFFIX).unlink(missing_ok=True)
            finally:
                os.close(fd)  # releases the lock: what is left is now replayable

    @property
    def path(self) -> Path | None:
        return self._path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_locked(path: Path, data: bytes) -> None:
    """Append to a file several processes share (rejected, malformed) under an exclusive lock;
    a short write (disk full) is cut back off, so the next line never joins a fragment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data if data.endswith(b"\n") else data + b"\n")
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)


def put_aside(directory: Path, kind: str, line: bytes, reason: str) -> Path:
    """Keep ``line`` in ``<kind>-<date>.ndjson`` and its reason in ``<kind>-<date>.log``."""
    path = directory / f"{kind}-{_today()}.ndjson"
    append_locked(path, line)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    append_locked(path.with_suffix(".log"), f"{stamp}\t{line_key(line)}\t{reason}".replace("\n", " ").encode())
    return path


# -- replay ------------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    delivered: int = 0
    rejected: int = 0
    malformed: list[str] = field(default_factory=list)  # FILE:LINE of each line put aside
    pending: int = 0  # lines still pending in the files this replay looked at
    stopped: Outcome | None = None  # why the replay stopped early (server unavailable, refused)
    busy: int = 0  # files skipped because a live process still writes them
    too_large: int = 0  # events a proxy refused with 413: left pending, the replay went on past them


def _done_keys(path: Path) -> set[str]:
    try:
        return set(path.with_name(path.name + DONE_SUFFIX).read_text().split())
    except (OSError, UnicodeDecodeError):
        return set()


def _is_event(line: bytes) -> bool:
    if not line.endswith(b"\n"):  # torn: the writer died mid-line
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def replay(directory: Path, send: Callable[[str], Outcome], *, limit: int | None = None,
           deadline: float | None = None) -> ReplayResult:
    """Send the unresolved lines of every file no live process owns; see the module docstring.

    At most ``limit`` events are sent, and none is started after ``deadline`` (a
    ``time.monotonic()`` value): the transport replays at emit time and must stay bounded."""
    result = ReplayResult()
    directory = Path(directory)
    _drop_orphan_marks(directory)
    budget = limit if limit is not None else float("inf")
    for path in sorted(directory.glob(PENDING_GLOB)):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # removed by its owner or another replayer meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                result.busy += 1
                continue
            if os.fstat(fd).st_nlink == 0:  # removed between open and lock
                continue
            budget = _replay_file(path, fd, send, result, budget, deadline)
        finally:
            os.close(fd)
        if result.stopped is not None or budget <= 0:
            break
    return result


def _replay_file(path: Path, fd: int, send: Callable[[str], Outcome], result: ReplayResult, budget: float,
                 deadline: float | None) -> float:
    with os.fdopen(os.dup(fd), "rb") as fh:
        lines = fh.readlines()
    done = _done_keys(path)
    marks = path.with_name(path.name + DONE_SUFFIX)
    left = 0
    with open(marks, "ab") as mark:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            key = line_key(line)
            if key in done:
                continue
            if deadline is not None and time.monotonic() >= deadline:
                budget = 0
            if result.stopped is not None or budget <= 0:
                left += 1
                continue
            if not _is_event(line):
                put_aside(path.parent, "malformed", line, f"{path.name}:{lineno}: not a JSON object on one line")
                result.malformed.append(f"{path}:{lineno}")
            else:
                outcome = send(line.decode("utf-8", "replace").rstrip("\n"))
                budget -= 1
                if outcome.rejected:
                    put_aside(path.parent, "rejected", line, outcome.reason)
                    result.rejected += 1
                elif outcome.delivered:
                    result.delivered += 1
                elif outcome.status == 413:
                    # A proxy's size limit refuses this event, not the server the rest: it stays
                    # pending (the proxy's limit can be raised) without holding up what follows.
                    result.too_large += 1
                    left += 1
                    continue
                else:
                    result.stopped = outcome
                    left += 1
                    continue
            done.add(key)
            mark.write(key.encode() + b"\n")
            mark.flush()
    result.pending += left
    if left == 0:  # everything in it is resolved: the file goes, its marks after it
        path.unlink(missing_ok=True)
        marks.unlink(missing_ok=True)
    return budget


def _drop_orphan_marks(directory: Path) -> None:
    """Sidecars whose file is gone (a crash between the two removals) are removed."""
    for marks in directory.glob(PENDING_GLOB + DONE_SUFFIX):
        if not marks.with_name(marks.name[: -len(DONE_SUFFIX)]).exists():
            marks.unlink(missing_ok=True)


# -- status ------------------------------------------------------------------------------------


@dataclass
class SpoolStatus:
    directory: Path
    pending: int = 0
    pending_files: int = 0
    rejected: int = 0
    malformed: int = 0

    def as_dict(self) -> dict:
        return {"directory": str(self.directory), "pending": self.pending, "pendingFiles": self.pending_files,
                "rejected": self.rejected, "malformed": self.malformed}


def status(directory: Path) -> SpoolStatus:
    """Counts of pending (unresolved), rejected and malformed lines; reads without locking."""
    directory = Path(directory)
    out = SpoolStatus(directory)
    for path in sorted(directory.glob(PENDING_GLOB)):
        done = _done_keys(path)
        try:
            n = sum(1 for line in path.read_bytes().splitlines(keepends=True) if line.strip() and line_key(line) not in done)
        except FileNotFoundError:
            continue
        if n:
            out.pending += n
            out.pending_files += 1
    out.rejected = sum(count_lines(p) for p in directory.glob("rejected-*.ndjson"))
    out.malformed = sum(count_lines(p) for p in directory.glob("malformed-*.ndjson"))
    return out


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


# -- backoff -----------------------------------------------------------------------------------


class Backoff:
    """Exponential backoff shared by every process using one spool (a small state file).

    After ``n`` consecutive failures the next attempt waits ``base * 2**(n-1)`` seconds (at most
    ``cap``), with jitter so many workers do not retry in step.  Races between processes only
    make the wait a little shorter or longer; any success resets it.  A state file naming a wait
    longer than ``cap`` (corrupt, or written by a host whose clock runs ahead) is ignored.
    """

    def __init__(self, directory: Path, base: float = 1.0, cap: float = 60.0) -> None:
        self.path = Path(directory) / ".backoff"
        self.base, self.cap = base, cap

    def _read(self) -> tuple[int, float]:
        try:
            state = json.loads(self.path.read_text())
            return int(state["failures"]), float(state["until"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0.0

    def due(self) -> bool:
        # No legitimate wait ends more than ``cap`` from now: a later (or NaN) time is a
        # corrupt file or another host's clock ahead of ours, and must not mute every worker.
        wait = self._read()[1] - time.time()
        return not (wait > 0) or not (wait <= self.cap)

    def failed(self) -> None:
        failures = self._read()[0] + 1
        delay = min(self.base * 2 ** min(failures - 1, 30), self.cap) * random.uniform(0.5, 1.0)
        tmp = self.path.with_name(f".backoff.{os.getpid()}.{threading.get_ident()}")
        try:
            tmp.write_text(json.dumps({"failures": failures, "until": time.time() + delay}))
            tmp.replace(self.path)
        except OSError:
            pass

    def succeeded(self) -> None:
        if self.path.exists():
            try:
                self.path.unlink()
            except OSError:
                pass
