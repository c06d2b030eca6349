"""The ledger's state at a glance: head, queue, last checkpoint, last verification.

:func:`status` reads the head block and the queue (SELECT only) and the newest checkpoint and
verification record under the audit directory (``lineage audit verify`` writes
``last-verification.json`` beside the checkpoints).  Served as ``GET /api/v1/audit/status``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from lineage.audit import checkpoint as cp
from lineage.audit.hashing import when

LAST_VERIFICATION = "last-verification.json"


def verification_path(paths: cp.AuditPaths) -> Path:
    return paths.checkpoint_dir.parent / LAST_VERIFICATION


def record_verification(paths: cp.AuditPaths, summary: dict[str, Any]) -> None:
    path = verification_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, default=str) + "\n")


def status(conn: psycopg.Connection, paths: cp.AuditPaths) -> dict[str, Any]:
    head = conn.execute("SELECT seq, block_hash, last_entry, sealed_at FROM ledger_blocks ORDER BY seq DESC LIMIT 1").fetchone()
    queued, oldest = conn.execute("SELECT count(*), min(xact)::text FROM ledger_queue").fetchone()
    checkpoints = [body for _, body in cp.read_all(paths.checkpoint_dir) if body is not None]
    last_cp = max(checkpoints, key=lambda c: (c.get("block", 0), c.get("at", "")), default=None)
    try:
        verified = json.loads(verification_path(paths).read_text())
    except (OSError, ValueError):
        verified = None
    return {
        "head": {"block": head[0], "blockHash": bytes(head[1]).hex(), "entries": head[2], "sealedAt": when(head[3])} if head else None,
        "queued": queued,
        "lastCheckpoint": ({k: last_cp.get(k) for k in ("block", "blockHash", "entries", "at", "keyId")} if last_cp else None),
        "lastVerification": verified,
    }
