"""Group commit: concurrent single-event ingests share one transaction and one commit.

The OpenLineage HTTP transport (and Airflow's provider) send one request per event; a commit
per request spends most of its time waiting for the WAL flush.  Here each request hands its
parsed event to :meth:`GroupCommitter.submit` and waits on the returned future; a committer
thread takes everything that queued up while the previous commit was in flight, stores it in
one transaction (raw rows + one derivation-queue row, :func:`lineage.store.ingest.ingest_events`
with ``defer=True``) and resolves every future only after that commit returned.  A lone request is
committed at once; under load a group waits at most ``LINGER`` (1 ms) to reach the size of
the previous one, which roughly doubles the group size with a handful of concurrent senders
(each commit costs about as much for one event as for twenty).

Failure semantics: if the store refuses a value of one event, the group is retried one event
per transaction, so each request gets its own answer (the others are stored, that one is
refused); any other failure (store unreachable, busy) fails every request of the group, none
of which was acknowledged, so clients retry and nothing acknowledged is lost.  Duplicates in
one group are stored once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from lineage import metrics
from lineage.errors import StoreRefused
from lineage.events.model import ParsedEvent
from lineage.store.ingest import ingest_events

log = logging.getLogger("lineage.store.group_commit")

_STOP = object()
LINGER = 0.001  # seconds a group waits to fill up to the last group's size (see _take)


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
            fut.set_exception(RuntimeError("the server is shutting down"))
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
            self._commit(group)

    def _commit(self, group: list) -> None:
        events = [ev for ev, _ in group]
        started = time.perf_counter()
        try:
            self.db.run(lambda conn: ingest_events(conn, events, defer=True))
        except StoreRefused:
            self._one_by_one(group)
            return
        except BaseException as exc:  # nothing of the group was committed: every request fails and is retried
            for _, fut in group:
                fut.set_exception(exc)
            return
        metrics.group_commit_events.observe(len(group))
        if self.on_commit is not None:
            self.on_commit(len(group), time.perf_counter() - started)
        for _, fut in group:
            fut.set_result(None)

    def _one_by_one(self, group: list) -> None:
        for ev, fut in group:
            try:
                self.db.run(lambda conn: ingest_events(conn, [ev], defer=True))
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(None)

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
                item[1].set_exception(RuntimeError("the server is shutting down"))
