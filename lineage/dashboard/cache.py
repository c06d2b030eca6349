"""A bounded in-process cache of encoded graph answers, valid only for the store they came from.

Each entry is stored under the request's key together with the store's change stamp
(:func:`lineage.store.dashboard.change_stamp`) taken *before* the answer was read.  A lookup
gives the bytes back only when the stamp it is asked with is the same: a stamp moves on every
committed write and never comes back, so an entry answered under an older stamp is never
served once anything changed (it is dropped on that lookup).  Reading the answer after taking
the stamp can only make the entry newer than its stamp, never older, which is safe: a request
that sees the old stamp started before that write committed.

Bounded by entries and by bytes (a 10,000-node answer is a few megabytes), least recently used
first out.  Thread-safe: FastAPI runs sync routes in a thread pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable

MAX_ENTRIES = 64
MAX_BYTES = 64 * 1024 * 1024


class ResponseCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[Hashable, tuple[str, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, stamp: str) -> bytes | None:
        """The bytes stored for ``key`` under exactly ``stamp``; None otherwise (a stale entry is dropped)."""
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != stamp:
                if found is not None:
                    self._drop(key)
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[1]

    def put(self, key: Hashable, stamp: str, body: bytes) -> None:
        if len(body) > self.max_bytes:  # larger than the whole budget: not worth evicting everything for
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (stamp, body)
            self._bytes += len(body)
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _drop(self, key: Hashable) -> None:
        _, body = self._items.pop(key)
        self._bytes -= len(body)
