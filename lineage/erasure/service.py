"""Erasure as a service: revoke, list everything built from a source, and track it to the end.

:func:`erase` is what ``POST /api/v1/erasures`` (and so ``lineage erase``) calls, as the
authenticated steward, in the caller's one transaction:

1. the source must be a dataset the store knows, compared under Unicode NFC (a name spelt
   with a look-alike character is another dataset, and one the store does not know is a 404);
   every spelling the store holds of it (NFC and NFD) is erased together;
2. a source is erased once: a second request is a :class:`~lineage.errors.Conflict` naming
   the first manifest (erasures of one source are serialised by an advisory lock);
3. every contract any revision of which covers the source is revoked through the registry's
   own revoke (``lineage.contracts.registry.revoke``), as the steward, with the erasure's
   reason; contracts already revoked or expired are listed, not revoked again;
4. the manifest lists the source and every dataset downstream of it at any depth
   (:func:`lineage.store.impact.impact`), each with its kind (``source``, ``dataset``,
   ``model``) and artifact location: the ``dataSource`` facet's URI joined with the dataset's
   name, else the namespace as a URI (``postgres://h:5432`` + ``/db.table``), else none; the
   models' training runs; the contracts revoked.  Stored as JSON and a readable summary.

What happens next is recorded against the manifest: each deletion (:func:`record_deletion`,
by whoever deleted it, e.g. the ``erase_source`` DAG with its token; only for an item on that
manifest), and each new run that writes an erased dataset again (a trigger at ingest, see
migration 0011).  :func:`status` reads both: done, outstanding, recreated.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg

from lineage.auth import Principal
from lineage.errors import BadRequest, Conflict, Forbidden, NotFound
from lineage.events.ids import NodeId, node_id, parse_node_id
from lineage.store import erasure as sql
from lineage.times import iso

ROLE = "steward"


def _text(value: object, field: str, limit: int = 2000) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(field, "is required and may not be blank")
    if len(value) > limit:
        raise BadRequest(field, f"is longer than {limit} characters")
    return value.strip()


def location(namespace: str, name: str, data_source_uri: str | None) -> str | None:
    """Where a dataset's data lives, as a URI (see the module docstring)."""
    base = data_source_uri if data_source_uri else (namespace if "://" in namespace else None)
    if base is None:
        return None
    return base.rstrip("/") + "/" + quote(name, safe="/._-~")


def erase(conn: psycopg.Connection, actor: Principal, source: str, reason: str) -> dict[str, Any]:
    """Erase ``source`` (``dataset:NS:NAME`` or ``NS:NAME``) for ``reason`` as ``actor``; the manifest."""
    from lineage.contracts import registry
    from lineage.store.impact import impact

    if not actor.has(ROLE):
        raise Forbidden(f"`{actor.name}` may not erase a source: that needs the `{ROLE}` role")
    why = _text(reason, "reason")
    node = parse_node_id(_text(source, "source"), "source", kind="dataset")
    sql.lock_source(conn, node.namespace, node.name)
    earlier = sql.manifest_for_source(conn, node.namespace, node.name)
    if earlier is not None:
        raise Conflict(f"`{node}` was already erased (erasure #{earlier}): `lineage erasure status {earlier}` shows what is left")
    spellings = sql.datasets_like(conn, node.namespace, node.name)
    if not spellings:
        raise NotFound("dataset", f"{node.namespace}:{node.name}")
    home = (node.namespace, node.name) if (node.namespace, node.name) in spellings else spellings[0]

    revoked, already = [], []
    for cid in sql.contracts_covering(conn, node.namespace, node.name):
        state = registry.current(conn, cid)
        if state is None:
            continue
        if state.status in ("revoked", "expired"):
            already.append(state.ref)
            continue
        revoked.append(registry.revoke(conn, cid, actor, f"erasure of {node}: {why}").ref)

    items: dict[tuple[str, str], dict[str, Any]] = {}
    models: dict[str, list[str]] = {}
    for ns, name in spellings:
        items.setdefault((sql.nfc(ns), sql.nfc(name)), {"kind": "source", "namespace": ns, "name": name})
        found = impact(conn, NodeId("dataset", ns, name))
        model_ids = {m for m in found.models}
        for m, runs in found.models.items():
            models.setdefault(m, []).extend(r for r in runs if r not in models.get(m, []))
        for ds in found.datasets:
            d = parse_node_id(ds)
            kind = "model" if ds in model_ids else "dataset"
            items.setdefault((sql.nfc(d.namespace), sql.nfc(d.name)), {"kind": kind, "namespace": d.namespace, "name": d.name})
    uris = sql.data_source_uris(conn, [(i["namespace"], i["name"]) for i in items.values()])
    ordered = sorted(items.values(), key=lambda i: ({"source": 0, "dataset": 1, "model": 2}[i["kind"]], i["namespace"], i["name"]))
    manifest_id, ids = sql.allocate_ids(conn, len(ordered))
    for it, iid in zip(ordered, ids):
        it["id"] = iid
        it["dataset"] = node_id("dataset", it["namespace"], it["name"])
        it["location"] = location(it["namespace"], it["name"], uris.get((it["namespace"], it["name"])))
    manifest = {
        "erasure": manifest_id,
        "source": node_id("dataset", *home),
        "reason": why,
        "requestedBy": actor.name,
        "credential": actor.credential,
        "revokedContracts": revoked,
        "alreadyRevokedContracts": already,
        "items": [{k: it[k] for k in ("id", "kind", "dataset", "namespace", "name", "location")} for it in ordered],
        "models": [{"id": m, "trainingRuns": sorted(r)} for m, r in sorted(models.items())],
        "counts": {k: sum(1 for i in ordered if i["kind"] == k) for k in ("source", "dataset", "model")},
    }
    summary = render_summary(manifest)
    sql.insert_manifest(
        conn, manifest_id, namespace=home[0], name=home[1], reason=why, requested_by=actor.name, credential=actor.credential,
        revoked=revoked, items=ordered, manifest=manifest, summary=summary,
    )
    return status(conn, manifest_id)


def render_summary(manifest: dict[str, Any]) -> str:
    """The manifest as text a person reads (and a regulator could be sent)."""
    c = manifest["counts"]
    lines = [
        f"Erasure #{manifest['erasure']} of {manifest['source']}",
        f"requested by {manifest['requestedBy']} ({manifest['credential']}): {manifest['reason']}",
        f"contracts revoked: {', '.join(manifest['revokedContracts']) or 'none'}"
        + (f" (already revoked or expired: {', '.join(manifest['alreadyRevokedContracts'])})" if manifest["alreadyRevokedContracts"] else ""),
        f"to delete: {c['source']} source, {c['dataset']} derived dataset(s), {c['model']} model(s)",
    ]
    for it in manifest["items"]:
        lines.append(f"  [{it['id']}] {it['kind']:<7} {it['dataset']}  at {it['location'] or '(no known location)'}")
    for m in manifest["models"]:
        lines.append(f"  model {m['id']} trained by run(s) {', '.join(m['trainingRuns']) or '(none recorded)'}")
    return "\n".join(lines)


def status(conn: psycopg.Connection, manifest_id: int) -> dict[str, Any]:
    """The manifest with each item's state: ``deleted`` (done) or ``outstanding``, and re-creations."""
    row = sql.manifest_row(conn, manifest_id)
    if row is None:
        raise NotFound("erasure", str(manifest_id))
    items = []
    for it in sql.item_rows(conn, manifest_id):
        deleted = next((e for e in it["events"] if e["action"] == "deleted"), None)
        recreated = [e for e in it["events"] if e["action"] == "recreated"]
        items.append({
            "id": it["id"], "kind": it["kind"], "dataset": node_id("dataset", it["namespace"], it["name"]),
            "namespace": it["namespace"], "name": it["name"], "location": it["location"],
            "state": "deleted" if deleted else "outstanding", "deleted": deleted, "recreated": recreated,
        })
    done = sum(1 for i in items if i["state"] == "deleted")
    recreated = sum(len(i["recreated"]) for i in items)
    return {
        "id": row["id"],
        "source": node_id("dataset", row["source_namespace"], row["source_name"]),
        "reason": row["reason"],
        "requestedBy": row["requested_by"],
        "credential": row["credential"],
        "recordedAt": iso(row["recorded_at"]),
        "revokedContracts": list(row["revoked"]),
        "state": "recreated" if recreated else ("complete" if done == len(items) else "in_progress"),
        "counts": {"items": len(items), "deleted": done, "outstanding": len(items) - done, "recreated": recreated},
        "items": items,
        "manifest": row["manifest"],
        "summary": row["summary"],
    }


def list_erasures(conn: psycopg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return [
        {"id": r["id"], "source": node_id("dataset", r["source_namespace"], r["source_name"]), "reason": r["reason"],
         "requestedBy": r["requested_by"], "recordedAt": iso(r["recorded_at"]),
         "counts": {"items": r["items"], "deleted": r["deleted"], "outstanding": r["items"] - r["deleted"], "recreated": r["recreated"]}}
        for r in sql.manifest_rows(conn, limit)
    ]


def record_deletion(conn: psycopg.Connection, actor: Principal, manifest_id: int, item_id: int, detail: dict[str, Any]) -> dict[str, Any]:
    """Record that item ``item_id`` of manifest ``manifest_id`` was deleted, by ``actor``.

    An item that is not on that manifest is a 404 (nothing is recorded); recording it twice
    keeps the first record.  Returns the item's status."""
    if sql.manifest_row(conn, manifest_id) is None:
        raise NotFound("erasure", str(manifest_id))
    if sql.item_of(conn, manifest_id, item_id) is None:
        raise NotFound("erasure item", f"{item_id} of erasure #{manifest_id}")
    sql.record_deletion(conn, item_id, detail, actor.name, actor.credential)
    return next(i for i in status(conn, manifest_id)["items"] if i["id"] == item_id)
