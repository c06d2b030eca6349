"""Store OpenLineage events: append the raw event, derive the graph, all set-based.

Contract:

* :func:`ingest_events` stores a list of already-validated events in the caller's
  transaction.  An event whose canonical form is already stored is a duplicate and changes
  nothing (clients retry; the same event is stored once).  With ``defer=True`` (HTTP ingest)
  it stores the raw events and queues them for the derivation workers
  (:mod:`lineage.store.derive`) instead of deriving them in this transaction;
  :func:`derive_stored` is the derivation both paths share.
* Derived tables (namespaces, jobs, datasets, versions, runs, run states, run and job edges)
  are written from staging tables with a fixed number of statements per batch, whatever its
  size, so a 10k-event batch costs about as many round trips as a single event.
* Events may arrive in any order.  A run's state is the latest *terminal* state (COMPLETE,
  FAIL, ABORT) if it has one, else its latest state, so COMPLETE-before-START ends COMPLETE.
* :func:`store_group` stores a small group of validated events in one statement: the group
  commit's groups and each chunk of a batch (:mod:`lineage.store.batch`, which validates and
  stores whole batches).
* Concurrent writers of overlapping batches do not fail on each other: event keys are
  claimed in key order (``event_keys``, migration 0014) within each statement, derived upserts
  run in a fixed order; what is left (a serialization failure, or a deadlock between two
  chunked batches holding the same events in other orders) is retried by the caller
  (``Database.run``).
* A value the store refuses fails only its own event (:func:`lineage.store.batch.ingest_batch`).
* :func:`rebuild` drops every derived row and replays the raw events: the derived tables are
  a pure function of ``raw_events``, including each row's ``recorded_at``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import msgspec
import psycopg

from lineage.errors import InvalidEvent
from lineage.events.model import DatasetRef, ParsedEvent, parse_event
from lineage.store import column_lineage

log = logging.getLogger("lineage.store.ingest")

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_events (
    key uuid, kind text, event_type text, event_time timestamptz, run_uuid uuid,
    job_ns text, job_name text, parent_run uuid, nominal_start timestamptz, nominal_end timestamptz,
    job_type text, job_description text, job_location text, raw_id bigint, job_id bigint,
    recorded_at timestamptz DEFAULT now()
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_io (
    key uuid, direction "char", ns text, name text, schema_hash uuid, version text,
    source text, description text, dataset_id bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_schemas (hash uuid, fields jsonb) ON COMMIT DELETE ROWS;
"""

# Statements that turn the staged (new) events into derived rows.  Upserts touch rows in a
# fixed order (by name / id) so concurrent batches cannot deadlock on each other.  Every
# derived row's recorded_at is the earliest recorded_at of the raw events behind it (not the
# time it was derived), so a rebuild keeps it and as-of answers do not change.
_DERIVE = [
    # Namespaces: insert-only, and an UPDATE only when an earlier event arrives late, so
    # concurrent ingests into one namespace do not queue on its row lock.
    """
    WITH seen AS (
        SELECT ns, min(t) AS t, min(r) AS r FROM (
            SELECT job_ns AS ns, event_time AS t, recorded_at AS r FROM stage_events WHERE job_ns IS NOT NULL
            UNION ALL
            SELECT i.ns, e.event_time, e.recorded_at FROM stage_io i JOIN stage_events e ON e.key = i.key
        ) x GROUP BY ns
    ), ins AS (
        INSERT INTO namespaces (name, created_at, recorded_at) SELECT ns, t, r FROM seen ORDER BY ns
        ON CONFLICT (name) DO NOTHING
    )
    UPDATE namespaces n SET created_at = least(n.created_at, seen.t), recorded_at = least(n.recorded_at, seen.r)
    FROM seen WHERE n.name = seen.ns AND (seen.t < n.created_at OR seen.r < n.recorded_at)
    """,
    """
    INSERT INTO jobs (namespace_id, name, job_type, description, location, created_at, updated_at, recorded_at)
    SELECT n.id, j.job_name, j.job_type, j.job_description, j.job_location, j.created, j.updated, j.recorded
    FROM (
        SELECT job_ns, job_name,
               (array_agg(job_type ORDER BY event_time DESC) FILTER (WHERE job_type IS NOT NULL))[1] AS job_type,
               (array_agg(job_description ORDER BY event_time DESC) FILTER (WHERE job_description IS NOT NULL))[1] AS job_description,
               (array_agg(job_location ORDER BY event_time DESC) FILTER (WHERE job_location IS NOT NULL))[1] AS job_location,
               min(event_time) AS created, max(event_time) AS updated, min(recorded_at) AS recorded
        FROM stage_events WHERE job_ns IS NOT NULL GROUP BY job_ns, job_name
    ) j JOIN namespaces n ON n.name = j.job_ns
    ORDER BY n.id, j.job_name
    ON CONFLICT (namespace_id, name) DO UPDATE SET
        job_type = CASE WHEN excluded.updated_at >= jobs.updated_at THEN coalesce(excluded.job_type, jobs.job_type) ELSE coalesce(jobs.job_type, excluded.job_type) END,
        description = CASE WHEN excluded.updated_at >= jobs.updated_at THEN coalesce(excluded.description, jobs.description) ELSE coalesce(jobs.description, excluded.description) END,
        location = CASE WHEN excluded.updated_at >= jobs.updated_at THEN coalesce(excluded.location, jobs.location) ELSE coalesce(jobs.location, excluded.location) END,
        created_at = least(jobs.created_at, excluded.created_at),
        updated_at = greatest(jobs.updated_at, excluded.updated_at),
        recorded_at = least(jobs.recorded_at, excluded.recorded_at)
    """,
    """
    UPDATE stage_events s SET job_id = j.id
    FROM jobs j JOIN namespaces n ON n.id = j.namespace_id
    WHERE s.job_ns = n.name AND s.job_name = j.name
    """,
    "INSERT INTO dataset_schemas (hash, fields) SELECT DISTINCT ON (hash) hash, fields FROM stage_schemas ORDER BY hash ON CONFLICT (hash) DO NOTHING",
    """
    INSERT INTO datasets (namespace_id, name, source_name, description, schema_id, schema_time, created_at, updated_at, recorded_at)
    SELECT n.id, d.name, d.source, d.description, s.id, d.schema_time, d.created, d.updated, d.recorded
    FROM (
        SELECT i.ns, i.name,
               (array_agg(i.source ORDER BY e.event_time DESC) FILTER (WHERE i.source IS NOT NULL))[1] AS source,
               (array_agg(i.description ORDER BY e.event_time DESC) FILTER (WHERE i.description IS NOT NULL))[1] AS description,
               (array_agg(i.schema_hash ORDER BY e.event_time DESC, i.schema_hash DESC) FILTER (WHERE i.schema_hash IS NOT NULL))[1] AS schema_hash,
               max(e.event_time) FILTER (WHERE i.schema_hash IS NOT NULL) AS schema_time,
               min(e.event_time) AS created, max(e.event_time) AS updated, min(e.recorded_at) AS recorded
        FROM stage_io i JOIN stage_events e ON e.key = i.key
        GROUP BY i.ns, i.name
    ) d
    JOIN namespaces n ON n.name = d.ns
    LEFT JOIN dataset_schemas s ON s.hash = d.schema_hash
    ORDER BY n.id, d.name
    ON CONFLICT (namespace_id, name) DO UPDATE SET
        source_name = CASE WHEN excluded.updated_at >= datasets.updated_at THEN coalesce(excluded.source_name, datasets.source_name) ELSE coalesce(datasets.source_name, excluded.source_name) END,
        description = CASE WHEN excluded.updated_at >= datasets.updated_at THEN coalesce(excluded.description, datasets.description) ELSE coalesce(datasets.description, excluded.description) END,
        schema_id = CASE WHEN lineage_newer_schema(excluded.schema_id, excluded.schema_time, datasets.schema_id, datasets.schema_time) THEN excluded.schema_id ELSE datasets.schema_id END,
        schema_time = CASE WHEN lineage_newer_schema(excluded.schema_id, excluded.schema_time, datasets.schema_id, datasets.schema_time) THEN excluded.schema_time ELSE datasets.schema_time END,
        created_at = least(datasets.created_at, excluded.created_at),
        updated_at = greatest(datasets.updated_at, excluded.updated_at),
        recorded_at = least(datasets.recorded_at, excluded.recorded_at)
    """,
    """
    UPDATE stage_io i SET dataset_id = d.id
    FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
    WHERE i.ns = n.name AND i.name = d.name
    """,
    # Runs.  rank: terminal states beat START/RUNNING, which beat OTHER; ties go to the later event.
    """
    INSERT INTO runs (run_uuid, job_id, parent_run_uuid, state, state_time, started_at, ended_at,
                      nominal_start, nominal_end, created_at, updated_at, recorded_at)
    SELECT run_uuid, (array_agg(job_id ORDER BY event_time DESC))[1],
           (array_agg(parent_run ORDER BY event_time DESC) FILTER (WHERE parent_run IS NOT NULL))[1],
           (array_agg(state ORDER BY lineage_state_rank(state) DESC, event_time DESC))[1],
           (array_agg(event_time ORDER BY lineage_state_rank(state) DESC, event_time DESC))[1],
           min(event_time) FILTER (WHERE state = 'START'),
           max(event_time) FILTER (WHERE lineage_state_rank(state) = 2),
           (array_agg(nominal_start ORDER BY event_time DESC) FILTER (WHERE nominal_start IS NOT NULL))[1],
           (array_agg(nominal_end ORDER BY event_time DESC) FILTER (WHERE nominal_end IS NOT NULL))[1],
           min(event_time), max(event_time), min(recorded_at)
    FROM (SELECT *, coalesce(event_type, 'OTHER') AS state FROM stage_events WHERE kind = 'run') e
    GROUP BY run_uuid ORDER BY run_uuid
    ON CONFLICT (run_uuid) DO UPDATE SET
        state = CASE WHEN (lineage_state_rank(excluded.state), excluded.state_time) >= (lineage_state_rank(runs.state), runs.state_time) THEN excluded.state ELSE runs.state END,
        state_time = CASE WHEN (lineage_state_rank(excluded.state), excluded.state_time) >= (lineage_state_rank(runs.state), runs.state_time) THEN excluded.state_time ELSE runs.state_time END,
        parent_run_uuid = coalesce(runs.parent_run_uuid, excluded.parent_run_uuid),
        started_at = least(runs.started_at, excluded.started_at),
        ended_at = greatest(runs.ended_at, excluded.ended_at),
        nominal_start = coalesce(runs.nominal_start, excluded.nominal_start),
        nominal_end = coalesce(runs.nominal_end, excluded.nominal_end),
        created_at = least(runs.created_at, excluded.created_at),
        updated_at = greatest(runs.updated_at, excluded.updated_at),
        recorded_at = least(runs.recorded_at, excluded.recorded_at)
    """,
    """
    UPDATE jobs j SET latest_run_uuid = r.run_uuid, latest_run_time = r.created_at
    FROM (
        SELECT DISTINCT ON (job_id) job_id, run_uuid, created_at FROM runs
        WHERE run_uuid IN (SELECT run_uuid FROM stage_events WHERE kind = 'run')
        ORDER BY job_id, created_at DESC
    ) r
    WHERE j.id = r.job_id AND (j.latest_run_time IS NULL OR r.created_at >= j.latest_run_time)
    """,
    """
    INSERT INTO run_io (run_uuid, dataset_id, direction, event_time, recorded_at)
    SELECT e.run_uuid, i.dataset_id, i.direction, min(e.event_time), min(e.recorded_at)
    FROM stage_io i JOIN stage_events e ON e.key = i.key
    WHERE e.kind = 'run' AND i.direction IN ('i', 'o')
    GROUP BY 1, 2, 3 ORDER BY 1, 3, 2
    ON CONFLICT (run_uuid, direction, dataset_id) DO UPDATE SET
        event_time = least(run_io.event_time, excluded.event_time),
        recorded_at = least(run_io.recorded_at, excluded.recorded_at)
        WHERE excluded.event_time < run_io.event_time OR excluded.recorded_at < run_io.recorded_at
    """,
    """
    INSERT INTO job_io (job_id, dataset_id, direction, first_seen, last_seen, recorded_at)
    SELECT e.job_id, i.dataset_id, i.direction, min(e.event_time), max(e.event_time), min(e.recorded_at)
    FROM stage_io i JOIN stage_events e ON e.key = i.key
    WHERE i.direction IN ('i', 'o')
    GROUP BY 1, 2, 3 ORDER BY 1, 3, 2
    ON CONFLICT (job_id, direction, dataset_id) DO UPDATE SET
        first_seen = least(job_io.first_seen, excluded.first_seen),
        last_seen = greatest(job_io.last_seen, excluded.last_seen),
        recorded_at = least(job_io.recorded_at, excluded.recorded_at)
        WHERE excluded.last_seen > job_io.last_seen OR excluded.first_seen < job_io.first_seen
           OR excluded.recorded_at < job_io.recorded_at
    """,
    # A run's output is a new version of the dataset: the datasetVersion facet names it, or
    # one is derived from the run and the dataset.
    """
    INSERT INTO dataset_versions (dataset_id, version, run_uuid, schema_id, raw_event_id, created_at, recorded_at)
    SELECT DISTINCT ON (v.dataset_id, v.version) v.dataset_id, v.version, v.run_uuid, s.id, v.raw_id,
           min(v.event_time) OVER (PARTITION BY v.dataset_id, v.version),
           min(v.recorded_at) OVER (PARTITION BY v.dataset_id, v.version)
    FROM (
        SELECT i.dataset_id, coalesce(i.version, md5(e.run_uuid::text || i.ns || ':' || i.name)::uuid::text) AS version,
               e.run_uuid, e.raw_id, e.event_time, e.recorded_at, i.schema_hash, lineage_state_rank(coalesce(e.event_type, 'OTHER')) AS rank
        FROM stage_io i JOIN stage_events e ON e.key = i.key
        WHERE e.kind = 'run' AND i.direction = 'o'
    ) v LEFT JOIN dataset_schemas s ON s.hash = v.schema_hash
    ORDER BY v.dataset_id, v.version, (s.id IS NOT NULL) DESC, v.rank DESC, v.event_time DESC
    ON CONFLICT (dataset_id, version) DO UPDATE SET
        schema_id = coalesce(dataset_versions.schema_id, excluded.schema_id),
        created_at = least(dataset_versions.created_at, excluded.created_at),
        recorded_at = least(dataset_versions.recorded_at, excluded.recorded_at)
        WHERE (dataset_versions.schema_id IS NULL AND excluded.schema_id IS NOT NULL)
           OR excluded.created_at < dataset_versions.created_at
           OR excluded.recorded_at < dataset_versions.recorded_at
    """,
    """
    UPDATE datasets d SET current_version = v.version
    FROM (
        SELECT DISTINCT ON (dataset_id) dataset_id, version FROM dataset_versions
        WHERE dataset_id IN (SELECT dataset_id FROM stage_io WHERE direction = 'o')
        ORDER BY dataset_id, created_at DESC, version DESC
    ) v
    WHERE d.id = v.dataset_id AND d.current_version IS DISTINCT FROM v.version
    """,
]


@dataclass
class IngestResult:
    stored: int
    duplicates: int


def _schema_key(fields: list[dict]) -> tuple[uuid.UUID, bytes]:
    encoded = msgspec.json.encode(fields)
    return uuid.UUID(bytes=hashlib.blake2b(encoded, digest_size=16).digest()), encoded


def _stage(conn: psycopg.Connection, events: list[ParsedEvent], raw_ids: list[int], recorded: list[datetime] | None = None) -> None:
    """COPY the derived facts of ``events`` (already stored as ``raw_ids``) into staging tables.

    ``recorded`` is each raw event's recorded_at (a rebuild passes them); without it the
    staged rows take this transaction's time, which is the raw rows' recorded_at too.
    """
    if not all(ev.datasets_read for ev in events):
        raise ValueError("an event parsed with datasets=False cannot be derived: parse its payload again")
    conn.execute(_STAGING)
    schemas: dict[uuid.UUID, bytes] = {}
    io_rows: list[tuple] = []
    cur = conn.cursor()
    columns = ("key, kind, event_type, event_time, run_uuid, job_ns, job_name, parent_run, nominal_start,"
               " nominal_end, job_type, job_description, job_location, raw_id")
    with cur.copy(f"COPY stage_events ({columns}{', recorded_at' if recorded else ''}) FROM STDIN") as copy:
        for n, (ev, raw_id) in enumerate(zip(events, raw_ids)):
            row = (
                ev.key, ev.kind, ev.event_type, ev.event_time, ev.run_id, ev.job_namespace, ev.job_name,
                ev.parent_run_id, ev.nominal_start, ev.nominal_end, ev.job_type, ev.job_description,
                ev.job_location, raw_id,
            )
            copy.write_row(row + (recorded[n],) if recorded else row)
            for direction, refs in (("i", ev.inputs), ("o", ev.outputs), ("d", [ev.dataset] if ev.dataset else [])):
                for ref in refs:
                    io_rows.append(_io_row(ev.key, direction, ref, schemas))
    if io_rows:
        with cur.copy("COPY stage_io (key, direction, ns, name, schema_hash, version, source, description) FROM STDIN") as copy:
            for row in io_rows:
                copy.write_row(row)
    if schemas:
        with cur.copy("COPY stage_schemas (hash, fields) FROM STDIN") as copy:
            for h, encoded in schemas.items():
                copy.write_row((h, encoded.decode()))


def _derive(conn: psycopg.Connection) -> None:
    # Pipeline mode sends every statement before reading any result: one round trip for the
    # lot, which is most of the cost of ingesting a single event.
    with conn.pipeline():
        for statement in _DERIVE:
            conn.execute(statement)
        # Empty the staging tables now, not only at commit: a caller may stage again in this transaction.
        conn.execute("DELETE FROM stage_events")
        conn.execute("DELETE FROM stage_io")
        conn.execute("DELETE FROM stage_schemas")


def _io_row(key: uuid.UUID, direction: str, ref: DatasetRef, schemas: dict[uuid.UUID, bytes]) -> tuple:
    schema_hash = None
    if ref.fields is not None:
        schema_hash, encoded = _schema_key(ref.fields)
        schemas[schema_hash] = encoded
    return (key, direction, ref.namespace, ref.name, schema_hash, ref.version, ref.source, ref.description)


_RAW_COLUMNS = "event_key, kind, event_type, event_time, run_uuid, job_namespace, job_name, producer, payload, normalizations"


def _raw_row(ev: ParsedEvent) -> tuple:
    return (ev.key, ev.kind, ev.event_type, ev.event_time, ev.run_id, ev.job_namespace, ev.job_name,
            ev.producer, ev.payload.decode(), ev.normalizations or None)


def _store_raw(conn: psycopg.Connection, events: list[ParsedEvent]) -> tuple[list[ParsedEvent], list[int]]:
    """Append the events not stored yet to ``raw_events``; return them with their new ids.

    Each event's key is first *claimed* in ``event_keys`` (migration 0014): one
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` in key order draws the ids from the
    sequence and returns only the keys no one had, so a key stored before, in any partition,
    or claimed by a concurrent writer (whose commit it waits for) comes back as nothing, and
    two writers of overlapping batches wait for each other instead of deadlocking.  The
    claimed events are then COPYed into ``raw_events`` with their ids, each payload parsed
    into jsonb exactly once; a trigger there refuses any row that is not a claim of this kind.
    """
    keys = sorted({ev.key for ev in events}, key=lambda k: k.bytes)
    claimed = dict(conn.execute(
        "INSERT INTO event_keys (event_key, raw_id)"
        " SELECT k, nextval('raw_events_id_seq') FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(k, n) ORDER BY n"
        " ON CONFLICT (event_key) DO NOTHING RETURNING event_key, raw_id", (keys,)).fetchall())
    if not claimed:
        return [], []
    # An event given twice (two requests merged into one transaction) is stored once: its first occurrence.
    first = {}
    for ev in events:
        if ev.key in claimed:
            first.setdefault(ev.key, ev)
    new = sorted(first.values(), key=lambda ev: ev.key.bytes)
    ids = [claimed[ev.key] for ev in new]
    with conn.cursor().copy(f"COPY raw_events (id, {_RAW_COLUMNS}) FROM STDIN") as copy:
        for ev, raw_id in zip(new, ids):
            copy.write_row((raw_id,) + _raw_row(ev))
    return new, ids


# One statement stores a group: the group commit's (concurrent single events) and each chunk
# of a batch.  The events go as one JSON array of rows whose ``p`` is the canonical payload
# spliced in as it is (no second encoding; PostgreSQL parses each payload into jsonb once, as
# COPY would), to ``lineage_store_group`` (migration 0015), which claims the keys, stores the
# claimed rows and queues them for derivation.  The group travels as one text parameter, so a
# statement takes at most SMALL_GROUP events and SMALL_GROUP_BYTES of payload (one request
# may carry 32 MB); a larger group commit takes claim + COPY, a larger batch more statements.
SMALL_GROUP = 64
SMALL_GROUP_BYTES = 4 * 1024 * 1024
_row_encoder = msgspec.json.Encoder()


def _group_rows(events: list[ParsedEvent]) -> bytes:
    """The events as one JSON array of ``_raw_row``'s columns (msgspec writes the UUIDs and the
    UTC times in the forms PostgreSQL reads), each canonical payload spliced in unchanged."""
    rows = []
    for ev in events:
        key, kind, event_type, at, run, job_ns, job_name, producer, payload, notes = _raw_row(ev)
        meta = _row_encoder.encode({"k": key, "kind": kind, "t": event_type, "at": at, "r": run, "jns": job_ns,
                                    "jn": job_name, "pr": producer, "nz": notes})
        rows.append(meta[:-1] + b',"p":' + payload.encode() + b"}")
    return b"[" + b",".join(rows) + b"]"


def fits_one_statement(events: list[ParsedEvent]) -> bool:
    """May :func:`store_group` take ``events``?"""
    return len(events) <= SMALL_GROUP and sum(len(ev.payload) for ev in events) <= SMALL_GROUP_BYTES


def _first_of_each(events: list[ParsedEvent]) -> list[ParsedEvent]:
    """One event per key (its first occurrence): each key is claimed once per statement."""
    return list({ev.key: ev for ev in reversed(events)}.values())


def store_group(conn: psycopg.Connection, events: list[ParsedEvent]) -> IngestResult:
    """Store and queue a small group of validated events (:func:`fits_one_statement`) in one
    statement: the same rows, claims and queue entry as ``ingest_events(conn, events, defer=True)``.
    With ``conn`` in autocommit (the group commit) the statement is the whole transaction."""
    if not fits_one_statement(events):
        raise ValueError(f"store_group takes at most {SMALL_GROUP} events and {SMALL_GROUP_BYTES} bytes of payload")
    unique = _first_of_each(events)
    if not unique:
        return IngestResult(0, 0)
    # Never a named prepared statement (nothing to plan; see migration 0015 on poolers).
    stored = conn.execute("SELECT lineage_store_group(%s)", (_group_rows(unique).decode(),), prepare=False).fetchone()[0]
    return IngestResult(stored=stored, duplicates=len(events) - stored)


def derive_stored(conn: psycopg.Connection, events: list[ParsedEvent], ids: list[int],
                  recorded: list[datetime] | None = None) -> None:
    """Derive the graph of ``events``, already stored as raw rows ``ids``, in the caller's transaction."""
    _stage(conn, events, ids, recorded)
    _derive(conn)
    column_lineage.derive(conn, column_lineage.with_column_lineage([ev.payload for ev in events], ids))


def ingest_events(conn: psycopg.Connection, events: list[ParsedEvent], *, defer: bool = False) -> IngestResult:
    """Store ``events`` in the caller's transaction; see the module docstring.

    ``defer``: store the raw events and queue them for the derivation workers
    (:mod:`lineage.store.derive`) instead of deriving them in this transaction.
    """
    unique = list({ev.key: ev for ev in reversed(events)}.values())[::-1]  # first occurrence wins
    new, ids = _store_raw(conn, unique) if unique else ([], [])
    if new:
        if defer:
            from lineage.store.derive import enqueue

            enqueue(conn, ids)
        else:
            derive_stored(conn, new, ids)
    return IngestResult(stored=len(new), duplicates=len(events) - len(new))


def rebuild(conn: psycopg.Connection, chunk: int = 5000) -> int:
    """Drop every derived row and derive it again from ``raw_events``; returns events replayed.

    Each derived row keeps the recorded_at of the raw events behind it, so as-of answers are
    the same after a rebuild.  A stored event that today's validation refuses (stored by an
    older version) is skipped and logged, not allowed to stop the rebuild.
    """
    # TRUNCATE is the owner's alone; this function (migration 0006) empties the derived
    # tables and restarts their ids on the application's behalf.
    conn.execute("SELECT lineage_clear_derived()")
    last_id, total = 0, 0
    while True:
        rows = conn.execute(
            "SELECT id, event_key, recorded_at, payload::text FROM raw_events WHERE id > %s ORDER BY id LIMIT %s",
            (last_id, chunk),
        ).fetchall()
        if not rows:
            return total
        events, ids, recorded = [], [], []
        for raw_id, key, at, payload in rows:
            try:
                ev = parse_event(msgspec.json.decode(payload))
            except InvalidEvent as exc:
                log.warning("rebuild: raw event %s skipped: %s", raw_id, exc.message)
                continue
            ev.key = key  # the identity it was stored under, whatever today's canonical form
            events.append(ev)
            ids.append(raw_id)
            recorded.append(at)
        if events:
            derive_stored(conn, events, ids, recorded)
        last_id = rows[-1][0]
        total += len(events)
