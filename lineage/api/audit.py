"""HTTP API for the ledger (``/api/v1/audit``): its state, for auditors, admins and the dashboard.

    ``GET /api/v1/audit/status`` → ``{"head", "queued", "lastCheckpoint", "lastVerification"}``

Verification itself is not an HTTP call: it re-hashes the whole store (``lineage audit
verify``) and its result is what ``lastVerification`` shows.  Thin over
:mod:`lineage.audit.status`; no SQL here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from lineage.api.security import require

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/status", summary="The ledger's head block, queue, last checkpoint and last verification")
def audit_status(request: Request, _principal=Depends(require("auditor", "admin"))) -> dict[str, Any]:
    from lineage.audit.checkpoint import AuditPaths
    from lineage.audit.status import status

    with request.app.state.db.connection() as conn:
        return status(conn, AuditPaths.from_env(request.app.state.settings.home))
