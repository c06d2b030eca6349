"""Concurrent clients over HTTP: overlapping batches never get a 5xx, and each event is stored once.

Eight clients each send the same pool of events in overlapping batches, in their own
shuffled order, all at once (a barrier releases them together).  Conflicts between the
server's transactions (the same raw event inserted twice, deadlocks, serialization
failures) must be settled inside the server.  The 60-second version with counts by status
is ``benchmarks/concurrent_ingest.py``.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx

from lineage.samples import dataset, run_event

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def overlapping_events(rng: random.Random, runs: int) -> list[dict]:
    """START and COMPLETE of ``runs`` runs over a few shared datasets and jobs (hot rows)."""
    events = []
    for r in range(runs):
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        job = ("ns", f"job{r % 5}")
        ins, outs = [dataset("db", f"t{rng.randrange(6)}", [("a", "int")])], [dataset("db", f"t{6 + r % 4}", [("a", "int")])]
        at = T0 + timedelta(minutes=r)
        events.append(run_event("START", job, rid, ins, outs, at))
        events.append(run_event("COMPLETE", job, rid, ins, outs, at + timedelta(seconds=30)))
    return events


def test_eight_clients_sending_overlapping_batches_get_no_5xx_and_each_event_is_stored_once(live_server, db, auth_headers):
    events = [json.dumps(e).encode() for e in overlapping_events(random.Random(11), 40)]
    statuses: Counter = Counter()
    failures: list[str] = []
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def client(k: int) -> None:
        rng = random.Random(k)
        mine = events[:]
        rng.shuffle(mine)
        with httpx.Client(base_url=live_server.url, timeout=60, headers=auth_headers) as c:
            barrier.wait()
            for i in range(0, len(mine), 20):
                batch = mine[i : i + 30]  # consecutive batches overlap by 10 events
                ndjson = k % 2 == 0
                body = b"\n".join(batch) if ndjson else b"[" + b",".join(batch) + b"]"
                r = c.post("/api/v1/lineage/batch", content=body,
                           headers={"Content-Type": "application/x-ndjson" if ndjson else "application/json"})
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code != 200 or r.json()["rejected"]:
                        failures.append(r.text[:200])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [], (statuses, failures[:3])
    assert set(statuses) == {200}
    from lineage.store.derive import catch_up

    assert catch_up(db, 60)  # acknowledged means stored; the graph is derived after (raw first)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone() == (len(events), len(events))
        assert conn.execute("SELECT count(*) FROM runs WHERE state = 'COMPLETE'").fetchone()[0] == 40
