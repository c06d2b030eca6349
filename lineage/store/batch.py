"""The batch path: validate a batch in chunks and store each chunk while the next is validated.

Contract:

* :func:`ingest_batch` validates and stores a batch (raw JSON bytes or decoded values) in the
  caller's transaction and reports each rejected item by index; one bad event never fails the
  batch (a value the store refuses sends the batch through the one-by-one path).
* With ``defer=True`` (HTTP batches) the two halves of the work overlap: chunk k+1 is validated
  in Python while PostgreSQL stores chunk k, one ``lineage_store_group`` statement per chunk
  (:func:`lineage.store.ingest.store_group`'s) sent through libpq's asynchronous API
  (:class:`_InFlight`), all chunks one transaction: a batch is stored whole or not at all.
* Whatever fails while a statement is in flight (a refusal, a cancel, an exception or a signal
  here), the statement is cancelled and read to its end before the transaction rolls back, so
  the connection returns to the pool idle and no orphaned statement keeps the chunk's claims.
"""

from __future__ import annotations

import select
from typing import Callable

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from lineage.errors import FieldProblem, InvalidEvent
from lineage.events.model import ParsedEvent, gc_paused, parse_events
from lineage.store.db import refusal, refused_input
from lineage.store.ingest import (SMALL_GROUP, SMALL_GROUP_BYTES, IngestResult, _first_of_each, _group_rows,
                                  ingest_events)


#: A deferred batch is validated and sent in chunks of this many items (:func:`ingest_batch`).
CHUNK = SMALL_GROUP

Admit = Callable[[ParsedEvent], "FieldProblem | None"]


def _validate(items: list, lo: int, hi: int, admit: Admit | None,
              bad: list[tuple[int, InvalidEvent]], datasets: bool) -> list[tuple[int, ParsedEvent]]:
    """Parse ``items[lo:hi]``: ``(position, event)`` for each valid, admitted one; the others
    go to ``bad`` by position.  ``datasets``: as for :func:`lineage.events.model.parse_raw`."""
    good, rejected = parse_events(items[lo:hi], datasets=datasets)
    refused = {i for i, _ in rejected}
    bad.extend((lo + i, exc) for i, exc in rejected)
    kept = []
    for position, ev in zip((lo + i for i in range(hi - lo) if i not in refused), good):
        problem = admit(ev) if admit is not None else None  # the caller's own refusals (an emitter's namespace scope)
        if problem is None:
            kept.append((position, ev))
        else:
            bad.append((position, InvalidEvent([problem])))
    return kept


def ingest_batch(conn: psycopg.Connection, items: list, admit: Admit | None = None,
                 *, defer: bool = False) -> tuple[IngestResult, list[tuple[int, InvalidEvent]]]:
    """Validate and store a batch (raw JSON bytes or decoded values) in the caller's transaction.

    Returns the result for the valid events and ``(index, error)`` for each rejected one, by
    index.  A batch never fails as a whole because of one event: if the store refuses a value
    that validation let through (see :func:`lineage.store.db.refused_input`), the batch is
    rolled back and its events stored one by one, each in its own savepoint, the refused ones
    reported by index.  ``admit``, when given, may refuse a valid event (a :class:`FieldProblem`),
    reported likewise.

    With ``defer`` (the HTTP path) the batch is validated in chunks of :data:`CHUNK` items and
    each chunk's events are sent as one ``lineage_store_group`` statement *before the next
    chunk is validated*: PostgreSQL stores one chunk while Python validates the next, on the
    other core (measured in ``benchmarks/scale_out.py``).  All chunks are one transaction, so
    a batch is stored whole or not at all.  Keys are claimed in key order within a chunk, not
    across chunks: two concurrent batches sharing events in different orders can deadlock,
    which PostgreSQL detects and the caller retries (``Database.run``); a retry of the same
    batch claims in the same order and only waits.
    """
    bad: list[tuple[int, InvalidEvent]] = []
    kept: list[tuple[int, ParsedEvent]] = []
    with gc_paused(len(items)):
        try:
            if defer:
                return _ingest_overlapped(conn, items, admit, kept, bad), sorted(bad, key=_first)
            kept = _validate(items, 0, len(items), admit, bad, datasets=True)
            with conn.transaction():
                return ingest_events(conn, [ev for _, ev in kept]), sorted(bad, key=_first)
        except _Refused as refused:
            kept.extend(_validate(items, refused.validated, len(items), admit, bad, datasets=False))
        except psycopg.Error as exc:
            if not refused_input(exc):
                raise
    total = IngestResult(0, 0)
    # One transaction around the one-by-one retry, each event's own a savepoint inside it: a
    # failure part way (a timeout, a deadlock Database.run retries) must not leave the events
    # before it committed, stored by a request that failed and counted as duplicates on retry.
    with conn.transaction():
        for position, ev in kept:
            try:
                with conn.transaction():
                    one = ingest_events(conn, [ev], defer=defer)
            except psycopg.Error as exc:
                if not refused_input(exc):
                    raise
                bad.append((position, InvalidEvent([FieldProblem("$", f"the store refused a value of this event ({refusal(exc)})")])))
                continue
            total.stored += one.stored
            total.duplicates += one.duplicates
    return total, sorted(bad, key=_first)


def _first(pair: tuple) -> int:
    return pair[0]


class _Refused(Exception):
    """The store refused a value while a deferred batch was only partly validated."""

    def __init__(self, validated: int) -> None:
        self.validated = validated


def _ingest_overlapped(conn: psycopg.Connection, items: list, admit: Admit | None,
                       kept: list[tuple[int, ParsedEvent]], bad: list[tuple[int, InvalidEvent]]) -> IngestResult:
    """:func:`ingest_batch` with ``defer``: validate chunk k+1 while the server stores chunk k."""
    validated = 0
    try:
        with conn.transaction():
            flight = _InFlight(conn)
            try:
                while validated < len(items):
                    hi = min(validated + CHUNK, len(items))
                    chunk = _validate(items, validated, hi, admit, bad, datasets=False)  # stored raw, derived later
                    kept.extend(chunk)
                    validated = hi
                    for group in _statements([ev for _, ev in chunk]):
                        flight.send(group)
                flight.wait()
            except BaseException:
                flight.abandon()
                raise
    except psycopg.Error as exc:
        if refused_input(exc):
            raise _Refused(validated) from None
        raise
    return IngestResult(stored=flight.stored, duplicates=len(kept) - flight.stored)


def _statements(events: list[ParsedEvent]) -> list[list[ParsedEvent]]:
    """``events`` cut into groups :func:`store_group` takes, in order (an event bigger than
    SMALL_GROUP_BYTES alone in its group)."""
    out: list[list[ParsedEvent]] = []
    size = 0
    for ev in events:
        if not out or len(out[-1]) >= SMALL_GROUP or size + len(ev.payload) > SMALL_GROUP_BYTES:
            out.append([])
            size = 0
        out[-1].append(ev)
        size += len(ev.payload)
    return out


def _ready(fd: int, write: bool = False, timeout: float | None = None) -> bool:
    """Block until ``fd`` is readable (or, with ``write``, writable), at most ``timeout``
    seconds; is it readable?  poll, not select: a busy server's sockets are numbered past
    select's FD_SETSIZE (1024), which select refuses (psycopg's own waits use poll/epoll).  An
    error or hang-up counts as readable, so that consume_input reports it."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | (select.POLLOUT if write else 0))
    events = 0
    for _, ev in poller.poll(None if timeout is None else int(timeout * 1000)):
        events |= ev
    return bool(events & (select.POLLIN | select.POLLERR | select.POLLHUP))


_CANCEL_TRIES = 30  # abandon(): a cancel a second for this long, then the connection is closed


class _InFlight:
    """One ``lineage_store_group`` statement at a time sent on ``conn`` without waiting for it
    (libpq's asynchronous API, :mod:`psycopg.pq`), so that PostgreSQL stores one chunk of a
    batch while this thread validates the next.

    At most one statement is in flight: the next is sent only after the previous one's result
    is read, so neither side can be left blocked writing to the other.  Waits are in
    ``poll`` (the GIL released).  The statements run in the caller's open transaction (a
    statement sent outside one would commit on its own, so that is refused); the first error
    is raised as psycopg raises it (its SQLSTATE, so the caller's retry and refusal logic
    apply) after the connection is idle again.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        if conn.pgconn.transaction_status != pq.TransactionStatus.INTRANS:
            raise RuntimeError("_InFlight needs an open transaction on the connection")
        self.conn, self.pg, self.busy, self.stored = conn, conn.pgconn, False, 0

    def send(self, events: list[ParsedEvent]) -> None:
        self.wait()
        self.busy = True  # before sending: an interruption from here on leaves something to cancel
        self.pg.send_query_params(b"SELECT lineage_store_group($1)", [_group_rows(_first_of_each(events))])
        while self.pg.flush():  # the connection is non-blocking (psycopg's): write what the socket takes
            if _ready(self.pg.socket, write=True):
                self.pg.consume_input()

    def wait(self) -> None:
        """Read the statement in flight to its end; raise its error, if any.  Interrupted (a
        signal, a lost connection), it stays in flight for :meth:`abandon`."""
        if not self.busy:
            return
        error: psycopg.Error | None = None
        while True:
            self.pg.consume_input()
            if self.pg.is_busy():
                _ready(self.pg.socket)
                continue
            result = self.pg.get_result()
            if result is None:
                break
            if result.status == pq.ExecStatus.TUPLES_OK:
                self.stored += int(result.get_value(0, 0) or b"0")
            elif error is None:
                error = error_from_result(result, encoding=self.conn.info.encoding)
        self.busy = False
        if error is not None:
            raise error

    def abandon(self) -> None:
        """After a failure elsewhere: cancel the statement in flight and read it to its end, so
        the connection can roll back (its own error, if any, is the lesser one and dropped).

        A backend ignores a cancel while it is still reading a statement, and answers nothing
        until it has all of it: so the rest of the statement is written first (an interruption
        may have cut ``send`` short), and the cancel is repeated each second until the
        statement ends (one sent while the backend still read it was lost)."""
        if not self.busy:
            return
        try:
            while self.pg.flush():  # as in send: read what the server sends meanwhile
                if _ready(self.pg.socket, write=True):
                    self.pg.consume_input()
            for _ in range(_CANCEL_TRIES):
                try:
                    self.conn.cancel_safe(timeout=5)
                except Exception:  # noqa: BLE001 - the wait below ends either way
                    pass
                self.pg.consume_input()
                if self.pg.is_busy():
                    _ready(self.pg.socket, timeout=1.0)
                    self.pg.consume_input()
                if not self.pg.is_busy():
                    break
            else:  # a server that answers nothing (a partition): give the session up
                self.conn.close()
                return
            self.wait()  # the result is all here: reads it without blocking
        except psycopg.Error:
            pass  # a broken connection: the pool discards it
