"""Erasure manifests in SQL: ``erasure_manifests``, ``erasure_items``, ``erasure_item_events``
(migration 0011), all append-only.

Functions take an open psycopg connection; the caller owns the transaction.  Names are
compared in Unicode normal form C: the manifest keeps each dataset as the store spells it and
its NFC form (``norm_*``), and every lookup here normalises what it is given, so a dataset
written as ``café`` (NFC) and ``café`` (NFD) is one dataset to an erasure, and to the gate.
Status is never stored: an item is done when a ``deleted`` event exists for it.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any, Iterable

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def lock_source(conn: psycopg.Connection, namespace: str, name: str) -> None:
    """Serialise erasures of one source (by its NFC form) until the end of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))", (f"erasure:{nfc(namespace)}\x1f{nfc(name)}",))


def manifest_for_source(conn: psycopg.Connection, namespace: str, name: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM erasure_manifests WHERE norm_namespace = %s AND norm_name = %s", (nfc(namespace), nfc(name))
    ).fetchone()
    return row[0] if row else None


def datasets_like(conn: psycopg.Connection, namespace: str, name: str) -> list[tuple[str, str]]:
    """Every ``(namespace, name)`` of the store equal to the given one under NFC.  A scan of
    ``datasets``: an erasure is rare, and the store may hold both spellings."""
    rows = conn.execute(
        """SELECT n.name, d.name FROM datasets d JOIN namespaces n ON n.id = d.namespace_id
           WHERE normalize(n.name, NFC) = %s AND normalize(d.name, NFC) = %s ORDER BY 1, 2""",
        (nfc(namespace), nfc(name)),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def contracts_covering(conn: psycopg.Connection, namespace: str, name: str) -> list[str]:
    """Ids of every contract any revision of which names the dataset (under NFC)."""
    rows = conn.execute(
        """SELECT DISTINCT contract_id FROM contract_dataset_links
           WHERE normalize(namespace, NFC) = %s AND normalize(name, NFC) = %s ORDER BY 1""",
        (nfc(namespace), nfc(name)),
    ).fetchall()
    return [r[0] for r in rows]


_SOURCES = """
SELECT DISTINCT ON (n.name, d.name) n.name, d.name, x.ds->'facets'->'dataSource'->>'uri'
FROM unnest(%s::text[], %s::text[]) AS k(ns, name)
JOIN namespaces n ON n.name = k.ns JOIN datasets d ON d.namespace_id = n.id AND d.name = k.name
JOIN run_io io ON io.dataset_id = d.id
JOIN raw_events e ON e.run_uuid = io.run_uuid AND e.kind = 'run'
CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.payload->'outputs', '[]'::jsonb) || coalesce(e.payload->'inputs', '[]'::jsonb)) AS x(ds)
WHERE x.ds->>'namespace' = n.name AND x.ds->>'name' = d.name
  AND jsonb_typeof(x.ds->'facets'->'dataSource'->'uri') = 'string'
ORDER BY n.name, d.name, e.id DESC
"""


def data_source_uris(conn: psycopg.Connection, datasets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The latest ``dataSource`` facet URI recorded for each dataset, from the raw events of the
    runs that read or wrote it (found through ``run_io`` and the raw events' run index).  Written
    once per erasure, never on a read path."""
    pairs = sorted(set(datasets))
    if not pairs:
        return {}
    rows = conn.execute(_SOURCES, ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
    return {(ns, name): uri for ns, name, uri in rows}


def allocate_ids(conn: psycopg.Connection, items: int) -> tuple[int, list[int]]:
    """Ids for a manifest and its ``items`` items, taken before anything is written: the rows are
    append-only, so the manifest JSON that names them is complete when it is inserted."""
    mid = conn.execute("SELECT nextval(pg_get_serial_sequence('erasure_manifests', 'id'))").fetchone()[0]
    ids = [r[0] for r in conn.execute(
        "SELECT nextval(pg_get_serial_sequence('erasure_items', 'id')) FROM generate_series(1, %s)", (items,)
    ).fetchall()]
    return mid, sorted(ids)


def insert_manifest(
    conn: psycopg.Connection, manifest_id: int, *, namespace: str, name: str, reason: str, requested_by: str,
    credential: str, revoked: list[str], items: list[dict[str, Any]], manifest: dict[str, Any], summary: str,
) -> None:
    """Store a manifest and its items (``id``, ``kind``, ``namespace``, ``name``, ``location``)."""
    conn.execute(
        """INSERT INTO erasure_manifests (id, source_namespace, source_name, norm_namespace, norm_name, reason, requested_by,
                                          credential, revoked, manifest, summary)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (manifest_id, namespace, name, nfc(namespace), nfc(name), reason, requested_by, credential, revoked,
         Jsonb(manifest), summary),
    )
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO erasure_items (id, manifest_id, kind, namespace, name, norm_namespace, norm_name, location)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            [(it["id"], manifest_id, it["kind"], it["namespace"], it["name"], nfc(it["namespace"]), nfc(it["name"]),
              it.get("location")) for it in items],
        )


def manifest_row(conn: psycopg.Connection, manifest_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM erasure_manifests WHERE id = %s", (manifest_id,)).fetchone()


def manifest_rows(conn: psycopg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Manifests, newest first, with item counts (total, deleted, recreated)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT m.id, m.source_namespace, m.source_name, m.reason, m.requested_by, m.recorded_at,
                      (SELECT count(*) FROM erasure_items i WHERE i.manifest_id = m.id) AS items,
                      (SELECT count(DISTINCT e.item_id) FROM erasure_items i JOIN erasure_item_events e ON e.item_id = i.id
                       WHERE i.manifest_id = m.id AND e.action = 'deleted') AS deleted,
                      (SELECT count(*) FROM erasure_items i JOIN erasure_item_events e ON e.item_id = i.id
                       WHERE i.manifest_id = m.id AND e.action = 'recreated') AS recreated
               FROM erasure_manifests m ORDER BY m.id DESC LIMIT %s""",
            (limit,),
        ).fetchall()


def item_rows(conn: psycopg.Connection, manifest_id: int) -> list[dict[str, Any]]:
    """The manifest's items, each with its events (oldest first)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT i.id, i.kind, i.namespace, i.name, i.location,
                      coalesce(jsonb_agg(jsonb_build_object('action', e.action, 'runId', e.run_uuid, 'detail', e.detail,
                                                            'recordedBy', e.recorded_by, 'credential', e.credential,
                                                            'recordedAt', e.recorded_at) ORDER BY e.id)
                               FILTER (WHERE e.id IS NOT NULL), '[]'::jsonb) AS events
               FROM erasure_items i LEFT JOIN erasure_item_events e ON e.item_id = i.id
               WHERE i.manifest_id = %s GROUP BY i.id ORDER BY i.id""",
            (manifest_id,),
        ).fetchall()


def record_deletion(
    conn: psycopg.Connection, item_id: int, detail: dict[str, Any], recorded_by: str, credential: str
) -> bool:
    """Append a ``deleted`` event; False when the item already has one (nothing changes)."""
    cur = conn.execute(
        """INSERT INTO erasure_item_events (item_id, action, detail, recorded_by, credential)
           VALUES (%s, 'deleted', %s, %s, %s) ON CONFLICT DO NOTHING""",
        (item_id, Jsonb(detail), recorded_by, credential),
    )
    return cur.rowcount == 1


def item_of(conn: psycopg.Connection, manifest_id: int, item_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, kind, namespace, name, location FROM erasure_items WHERE manifest_id = %s AND id = %s",
            (manifest_id, item_id),
        ).fetchone()


def erased_among(conn: psycopg.Connection, datasets: Iterable[tuple[str, str]],
                 as_of: datetime | None = None) -> dict[tuple[str, str], tuple[int, str]]:
    """For the given ``(namespace, name)``\\ s: those on an erasure manifest (compared under NFC)
    recorded by ``as_of`` (default: now), each with ``(manifest id, the manifest's source as
    dataset:NS:NAME)`` of the first such manifest.  One query."""
    pairs = sorted(set(datasets))
    if not pairs:
        return {}
    rows = conn.execute(
        """SELECT DISTINCT ON (k.ns, k.name) k.ns, k.name, i.manifest_id, m.source_namespace, m.source_name
           FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k(ns, name, nns, nname)
           JOIN erasure_items i ON i.norm_namespace = k.nns AND i.norm_name = k.nname
           JOIN erasure_manifests m ON m.id = i.manifest_id
           WHERE %s::timestamptz IS NULL OR m.recorded_at <= %s
           ORDER BY k.ns, k.name, i.manifest_id""",
        ([p[0] for p in pairs], [p[1] for p in pairs], [nfc(p[0]) for p in pairs], [nfc(p[1]) for p in pairs], as_of, as_of),
    ).fetchall()
    return {(ns, name): (mid, f"dataset:{sns}:{sname}") for ns, name, mid, sns, sname in rows}
