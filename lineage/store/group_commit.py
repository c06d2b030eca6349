"""Group commit: concurrent single-event ingests share one transaction and one commit.

The OpenLineage HTTP transport (and Airflow's provider) send one request per event; a commit
per request spends most of its time waiting for the WAL flush.  Here each request hands its
parsed event to :meth:`GroupCommitter.submit` and waits on the returned future; a committer
thread takes everything that queued up while the previous commit was in flight, stores it in
one transaction (raw rows + one derivation-queue row: one autocommitted statement for a small
group, :func:`lineage.store.ingest.store_group`; claim + COPY for a large one) and resolves
every future only after that commit returned.  A lone request is
committed at once; under load a group waits at most ``LINGER`` (1 ms) to reach the size of
the previous one, which roughly doubles the group size with a handful of concurrent senders
(each commit costs about as much for one event as for twenty).

Failure semantics: if the store refuses a value of one event (or storing fails in any other
way that is not the store being unreachable or busy: an odd event meeting a bug), the group is
retried one event per transaction, so each request gets its own answer (the others are stored,
that one is refused); the store unreachable or busy fails every request of the group, none
of which was acknowledged, so clients retry and nothing acknowledged is lost.  Duplicates in
one group are stored once.  A request that gives up while its group commits (its future
cancelled) is skipped when answers go out; its event may be stored, never acknowledged, and a
retry is a duplicate.  After :meth:`close`, a submit is refused as unavailable (503, retry).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

import psycopg

from lineage import metrics
from lineage.errors import StoreBusy, StoreUnavailable
from lineage.events.model import ParsedEvent
from lineage.store.ingest import fits_one_statement, ingest_events, store_group

log = logging.getLogger("lineage.store.group_commit")

_STOP = object()
LINGER = 0.001  # seconds a group waits to fill up to the last group's size (see _take)


def _shutting_down() -> StoreUnavailable:
    # A 503 with Retry-After, as for any store that cannot take the event now: the client retries.
    return StoreUnavailable("the server is shutting down; retry")


def _resolve(fut: Future, exc: BaseException | None = None) -> None:
    """Answer ``fut`` unless its request already gave up: a future cancelled by a client that
    went away (``asyncio.wrap_future``) is done, and answering it again would raise here and
    kill the committer thread, leaving every later request waiting forever."""
    if fut.done():
        return
    try:
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)
    except Exception:  # noqa: BLE001 - cancelled between the check and the answer
        pass


def _store(conn: psycopg.Connection, events: list[ParsedEvent]) -> None:
    """Store a group in one transaction: a small one as one autocommitted statement (one round
    trip instead of six: :func:`lineage.store.ingest.store_group`), a large one with the batch
    path's claim + COPY."""
    if not fits_one_statement(events):
        ingest_events(conn, events, defer=True)
        return
    conn.autocommit = True  # a connection fresh from the pool is idle, so this is allowed
    try:
        store_group(conn, events)
    finally:
        try:
            conn.autocommit = False
        except psycopg.Error:  # a broken connection, which the pool discards anyway
            pass


class GroupCommitter:
    def __init__(self, db, *, threads: int = 1, max_events: int = 2000, on_commit=None) -> None:
        self.db = db
        self.max_events = max_events
        self.on_commit = on_commit  # called with (events in the group, seconds the commit took): metrics
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._last = 1  # the size of the last group: how many senders were concurrent
        self._threads = [threading.Thread(target=self._loop, name=f"lineage-commit-{n}", daemon=True) for n in range(threads)]
        for t in self._threads:
            t.start()

    def submit(self, event: ParsedEvent) -> Future:
        fut: Future = Future()
        if self._closed:
            fut.set_exception(_shutting_down())
            return fut
        self._queue.put((event, fut))
        return fut

    def _take(self) -> list | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        group = [first]
        # Linger: when the last group showed concurrent senders, wait up to LINGER seconds for
        # as many as it had, so each commit (whose cost hardly depends on its size) serves
        # more requests.  A lone sender (last group of one) never waits.
        want = min(self._last, self.max_events)
        deadline = time.monotonic() + LINGER if want > 1 else 0.0
        while len(group) < self.max_events:
            try:
                if len(group) < want:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # leave it for the loop after this group
                break
            group.append(item)
        self._last = len(group)
        return group

    def _loop(self) -> None:
        while True:
            group = self._take()
            if group is None:
                self._queue.put(_STOP)  # wake the next thread too
                return
            try:
                self._commit(group)
            except BaseException as exc:  # noqa: BLE001 - never let one group stop the committer
                log.exception("group commit failed unexpectedly")
                for _, fut in group:
                    _resolve(fut, exc)

    def _commit(self, group: list) -> None:
        events = [ev for ev, _ in group]
        started = time.perf_counter()
        try:
            self.db.run(lambda conn: _store(conn, events))
        except (StoreUnavailable, StoreBusy) as exc:  # nothing of the group was committed: every request fails and is retried
            for _, fut in group:
                _resolve(fut, exc)
            return
        except Exception:  # a value the store refused, or any other error tied to one event: find which
            self._one_by_one(group)
            return
        except BaseException as exc:
            for _, fut in group:
                _resolve(fut, exc)
            return
        metrics.group_commit_events.observe(len(group))
        if self.on_commit is not None:
            self.on_commit(len(group), time.perf_counter() - started)
        for _, fut in group:
            _resolve(fut)

    def _one_by_one(self, group: list) -> None:
        for ev, fut in group:
            try:
                self.db.run(lambda conn: _store(conn, [ev]))
            except BaseException as exc:
                _resolve(fut, exc)
            else:
                _resolve(fut)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the threads."""
        self._closed = True
        self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout)
        while True:  # a request that raced the shutdown is refused, never left waiting
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _resolve(item[1], _shutting_down())
