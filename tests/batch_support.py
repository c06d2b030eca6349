"""Helpers shared by the attack tests of the overlapped batch path (tests/store and tests/api)."""

from __future__ import annotations

import json
import threading
import uuid

import psycopg

from lineage.events import parse_raw
from lineage.samples import run_event
from lineage.store.ingest import ingest_events


def raw_event(job: str, ns: str = "overlap", **top) -> bytes:
    """A START event of a fresh run of ``ns:job``, as the JSON bytes a client sends."""
    ev = run_event("START", (ns, job), str(uuid.uuid4()))
    ev.update(top)
    return json.dumps(ev).encode()


def batch(n: int, prefix: str = "job", ns: str = "overlap") -> list[bytes]:
    return [raw_event(f"{prefix}{k}", ns) for k in range(n)]


def counts(conn) -> tuple:
    """(claims, raw rows, queue entries): what a batch that failed must not have changed."""
    return conn.execute("SELECT (SELECT count(*) FROM event_keys), (SELECT count(*) FROM raw_events),"
                        " (SELECT count(*) FROM derive_queue)").fetchone()


def queued_once(conn) -> bool:
    """Is every stored event queued for derivation exactly once?"""
    queued = [i for (i,) in conn.execute("SELECT unnest(raw_ids) FROM derive_queue")]
    return sorted(queued) == sorted(i for (i,) in conn.execute("SELECT id FROM raw_events"))


def with_options(url: str, **settings: str) -> str:
    """``url`` with session settings (as a role's ALTER ROLE ... SET would give every session)."""
    opts = " ".join(f"-c {k}={v}" for k, v in settings.items())
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={opts.replace(' ', '%20').replace('=', '%3D')}"


def hold_claim(db_url: str, item: bytes | dict) -> psycopg.Connection:
    """An open transaction holding the claim of ``item``'s key (not committed)."""
    body = item if isinstance(item, bytes) else json.dumps(item).encode()
    conn = psycopg.connect(db_url)
    ingest_events(conn, [parse_raw(body, datasets=False)], defer=True)
    return conn


def race(*sends) -> list:
    """Send each ``(database, items)`` as one deferred batch through ``Database.run``, all at
    once (a thread each, behind a barrier): their ``(result, rejected)`` in order; the first
    error any of them raised is raised here."""
    from lineage.store.batch import ingest_batch

    barrier = threading.Barrier(len(sends))
    boxes: list[dict] = [{} for _ in sends]

    def send(database, items, box):
        try:
            barrier.wait()
            box["result"] = database.run(lambda conn: ingest_batch(conn, items, defer=True))
        except BaseException as exc:  # noqa: BLE001 - raised below
            box["error"] = exc

    threads = [threading.Thread(target=send, args=(d, items, box)) for (d, items), box in zip(sends, boxes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a racing batch never finished"
    for box in boxes:
        if "error" in box:
            raise box["error"]
    return [box["result"] for box in boxes]
