"""Derivation after acknowledgement: the queue, the workers, and the read watermark.

Contract:

* :func:`enqueue` names raw events whose graph is not derived yet; it runs in the transaction
  that stored them, so an acknowledged event is always derived or queued (never neither).
* :func:`derive_pending` claims queue rows with ``FOR UPDATE SKIP LOCKED`` (any number of
  workers, in any number of processes, never on the same row), derives their events exactly
  as synchronous ingest does (:mod:`lineage.store.ingest`), and deletes the rows, all in one
  transaction.  A worker that dies mid-way rolls back and its rows go to the next one;
  deriving twice changes nothing.
* **Read your writes.**  :func:`catch_up` makes a read see every event acknowledged before the
  read began: it notes the newest queue row visible now, then derives (itself, beside the
  workers) until no row up to it is left, or the deadline passes (False: the caller decides —
  the gate blocks, a read answers with the lag in a header).  Staleness bound for any read:
  ``LINEAGE_READ_WAIT`` seconds (default 5); in steady state the derivation lag.
* :func:`lag_seconds` is the age of the oldest queued row: 0 when nothing waits.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import psycopg

from lineage import metrics
from lineage.errors import InvalidEvent, LineageError
from lineage.events.model import parse_raw
from lineage.store.db import classify, refusal, refused_input

log = logging.getLogger("lineage.store.derive")

# A worker's transaction derives at most this many events: large enough that a statement's
# fixed cost is shared, small enough that a retry after a deadlock repeats little.
MAX_EVENTS = 5000
_CLAIM = 1000  # queue rows locked per claim (a row is a batch or a group commit of a few events)
# After a round that found less than this, a worker lets work gather for GATHER_SECONDS: the
# derivation statements cost about as much for 20 events as for 2,000, so deriving in larger
# batches is what lets derivation keep up.  Reads never wait for it (catch_up derives itself).
_SMALL = MAX_EVENTS // 5
GATHER_SECONDS = 0.25


def enqueue(conn: psycopg.Connection, raw_ids: list[int]) -> None:
    if raw_ids:
        conn.execute("INSERT INTO derive_queue (raw_ids) VALUES (%s)", (raw_ids,))


@dataclass
class Claimed:
    queue_ids: list[int]
    raw_ids: list[int]
    recorded: list  # the rows' recorded_at: the partitions to look in


def _claim(conn: psycopg.Connection, upto: int | None) -> Claimed:
    rows = conn.execute(
        "SELECT id, raw_ids, recorded_at FROM derive_queue WHERE id <= %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (upto if upto is not None else 2**62, _CLAIM),
    ).fetchall()
    queue_ids: list[int] = []
    raw_ids: list[int] = []
    recorded: set = set()
    for qid, ids, at in rows:  # a prefix of at most MAX_EVENTS (but at least one row); the rest unlock at commit
        if queue_ids and len(raw_ids) + len(ids) > MAX_EVENTS:
            break
        queue_ids.append(qid)
        raw_ids.extend(ids)
        recorded.add(at)
    return Claimed(queue_ids, raw_ids, sorted(recorded))


def derive_pending(conn: psycopg.Connection, upto: int | None = None) -> int:
    """Claim, derive and delete queued rows (those with id <= ``upto`` when given) in the
    caller's transaction; returns the number of events derived (0: nothing claimable)."""
    from lineage.store.ingest import derive_stored

    claimed = _claim(conn, upto)
    if not claimed.queue_ids:
        return 0
    sql = "SELECT id, event_key, recorded_at, payload::text FROM raw_events WHERE id = ANY(%s)"
    # recorded_at prunes the partitions to the ones these rows are in (one, almost always): the
    # queue row was written in the raw rows' transaction, with the same now().
    rows = conn.execute(sql + " AND recorded_at = ANY(%s)", (claimed.raw_ids, claimed.recorded)).fetchall()
    if len(rows) < len(claimed.raw_ids):  # erased since, or queued apart from its rows: look everywhere
        rows = conn.execute(sql, (claimed.raw_ids,)).fetchall()
    rows.sort()
    events, ids, recorded = [], [], []
    for raw_id, key, at, payload in rows:
        try:
            # parse_raw, not parse_event(decode(...)): it knows whether the text has floats,
            # so the canonical form is taken by its fast path (a third of the cost).
            ev = parse_raw(payload.encode())
        except InvalidEvent as exc:  # stored by an older version whose validation was looser
            # Kept with the refusals (class only: the message quotes the event), so the event
            # missing from the graph is counted and visible, not only in a log line.
            log.warning("derive: raw event %s skipped: %s", raw_id, exc.message)
            conn.execute("INSERT INTO derive_refusals (raw_id, reason) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (raw_id, "InvalidEvent"))
            continue
        ev.key = key
        events.append(ev)
        ids.append(raw_id)
        recorded.append(at)
    # A raw event named here but gone (erased before it was derived) has nothing to derive.
    if events:
        try:
            with conn.transaction():
                derive_stored(conn, events, ids, recorded)
        except Exception as exc:
            if not _events_fault(conn, exc):
                raise
            _derive_one_by_one(conn, events, ids, recorded)
    conn.execute("DELETE FROM derive_queue WHERE id = ANY(%s)", (claimed.queue_ids,))
    return len(events)


def _events_fault(conn: psycopg.Connection, exc: BaseException) -> bool:
    """Did deriving fail because of the events themselves (a value the store refuses, or any
    other error that retrying the same events would meet again: a poison event), rather than
    because the store is unreachable or busy (the rows stay queued and are retried)?  Without
    this, one poison event is retried forever at the head of the queue and nothing behind it
    is ever derived: every read waits LINEAGE_READ_WAIT and the gate blocks every run."""
    if isinstance(exc, psycopg.Error):
        return refused_input(exc) or (classify(exc) is None and not conn.broken)
    return isinstance(exc, Exception)


def _derive_one_by_one(conn: psycopg.Connection, events: list, ids: list[int], recorded: list) -> None:
    """One of these events cannot be derived: derive each alone; keep the ones that fail in
    ``derive_refusals`` (with the error's class and SQLSTATE, no values or message text) instead
    of retrying forever.  A store that becomes unreachable meanwhile still raises (all retried)."""
    from lineage.store.ingest import derive_stored

    for ev, raw_id, at in zip(events, ids, recorded):
        try:
            with conn.transaction():
                derive_stored(conn, [ev], [raw_id], [at])
        except Exception as exc:
            if not _events_fault(conn, exc):
                raise
            log.error("derive: the graph of raw event %s cannot be derived; kept in derive_refusals (%s)", raw_id, refusal(exc))
            conn.execute("INSERT INTO derive_refusals (raw_id, reason) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (raw_id, refusal(exc)))


def requeue_refused(conn: psycopg.Connection) -> int:
    """Queue again every event kept in ``derive_refusals`` (after the cause is fixed); returns
    how many.  One that is refused again is kept aside again."""
    ids = [r[0] for r in conn.execute("DELETE FROM derive_refusals RETURNING raw_id").fetchall()]
    if ids:
        enqueue(conn, sorted(ids))
    return len(ids)


def lag_seconds(conn: psycopg.Connection) -> float:
    """Age in seconds of the oldest event acknowledged but not derived (0.0: none)."""
    row = conn.execute(
        "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0)::float8 FROM derive_queue"
    ).fetchone()
    return max(0.0, float(row[0]))


def pending_events(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(sum(cardinality(raw_ids)), 0)::bigint FROM derive_queue").fetchone()
    return int(row[0])


def refused_events(conn: psycopg.Connection) -> int:
    """Events acknowledged whose graph could not be derived (kept in ``derive_refusals``)."""
    return int(conn.execute("SELECT count(*) FROM derive_refusals").fetchone()[0])


def watermark(conn: psycopg.Connection) -> int | None:
    """The newest queue row visible now: what a read starting now must wait for (None: nothing)."""
    return conn.execute("SELECT max(id) FROM derive_queue").fetchone()[0]


def catch_up(db, timeout: float) -> bool:
    """Wait (deriving alongside the workers) until every event acknowledged before this call
    is derived; False if ``timeout`` seconds pass first.  ``db`` is a :class:`Database`."""
    with db.connection() as conn:
        mark = watermark(conn)
    if mark is None:
        return True
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        derived = db.run(lambda conn: derive_pending(conn, upto=mark))
        if not derived:
            with db.connection() as conn:
                left = conn.execute("SELECT EXISTS (SELECT 1 FROM derive_queue WHERE id <= %s)", (mark,)).fetchone()[0]
            if not left:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)  # the rest is being derived by a worker right now: wait for its commit
            pause = min(pause * 2, 0.05)


#: Exit status of a CLI read whose answer may miss events (derivation behind; the answer is
#: printed all the same).  Scripts that act on "everything built from X" must check it.
INCOMPLETE_EXIT = 3


def fresh(db, timeout: float | None = None) -> bool:
    """Wait until every event acknowledged before this call is derived, at most ``timeout``
    (default ``LINEAGE_READ_WAIT``); False (and a warning logged) if the wait ran out, so an
    answer read now may miss some of them."""
    if timeout is None:
        from lineage.config import Settings

        timeout = Settings().read_wait
    if catch_up(db, timeout):
        return True
    log.warning("derivation is behind: this answer may miss events acknowledged in the last %.0f s or more", timeout)
    return False


def incomplete_exit(what: str) -> None:
    """For a CLI read that printed an answer from a graph still deriving: say so on stderr and
    exit with :data:`INCOMPLETE_EXIT` (never 0: a script acting on the answer must not take it as whole)."""
    import typer

    typer.echo(f"warning: derivation is behind, so this {what} may miss events acknowledged recently "
               f"(see `lineage derive` and /readyz); exit status {INCOMPLETE_EXIT}", err=True)
    raise typer.Exit(INCOMPLETE_EXIT)


class Workers:
    """``count`` derivation threads over one :class:`Database` until :meth:`stop`."""

    def __init__(self, db, count: int, *, idle_pause: float = 0.05, gather: float = GATHER_SECONDS) -> None:
        self.db = db
        self.idle_pause = idle_pause
        self.gather = gather
        self.last_loop = time.monotonic()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"lineage-derive-{n}", daemon=True) for n in range(count)]
        for t in self._threads:
            t.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last_loop = time.monotonic()
            started = time.perf_counter()
            try:
                n = self.db.run(derive_pending)
            except LineageError as exc:  # store unreachable or busy: the rows stay queued; try again
                log.warning("derivation paused: %s", exc.message)
                self._stop.wait(1.0)
                continue
            except Exception:  # never let one bad batch stop derivation; it stays queued and is retried
                log.exception("derivation failed; the batch stays queued")
                self._stop.wait(1.0)
                continue
            if n:
                metrics.events_derived.inc(n)
                metrics.derive_batch_seconds.observe(time.perf_counter() - started)
            if n < _SMALL:
                self._stop.wait(self.gather if n else self.idle_pause)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
