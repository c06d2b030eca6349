"""HTTP API for erasures (``/api/v1/erasures``): thin over :mod:`lineage.erasure.service`.

    ``POST /api/v1/erasures``                                   ``{"source", "reason"}`` → 201, the status
    ``GET  /api/v1/erasures[?limit=]``                          manifests, newest first, with counts
    ``GET  /api/v1/erasures/{id}``                              the manifest, each item done or outstanding
    ``POST /api/v1/erasures/{id}/items/{itemId}/deletions``     ``{"location"?, "note"?}`` → 201 (200 if recorded before)

Erasing is a steward's act (``DECIDE``).  Manifests are read by auditors and stewards, and by
the ``emitter`` token an Airflow worker holds, since the ``erase_source`` DAG reads what to
delete and records each deletion with that token (``ERASURE_RECORD``), never with database
credentials.  No SQL here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lineage.api.deps import Text, get_db
from lineage.api.security import DECIDE, require
from lineage.auth.principal import Principal
from lineage.store.db import Database

router = APIRouter(prefix="/api/v1/erasures", tags=["erasure"])

ERASURE_READ = ("auditor", "steward", "emitter")
ERASURE_RECORD = ("emitter", "steward")

ErasureId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The erasure's id.")]
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The manifest item's id.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EraseIn(_Body):
    source: Text = Field(..., min_length=1, max_length=2000, description="The source dataset: `dataset:NAMESPACE:NAME` or `NAMESPACE:NAME`.")
    reason: Text = Field(..., min_length=1, max_length=2000, description="Why (kept on the manifest and in the revocations).")


class DeletionIn(_Body):
    location: Text | None = Field(None, max_length=4000, description="What was deleted, as a URI.")
    note: Text | None = Field(None, max_length=2000)


@router.post("", status_code=201, summary="Erase a source: revoke its contracts and write the manifest of everything built from it")
def erase(request: Request, body: EraseIn, actor: Principal = Depends(require(*DECIDE)), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.api.freshness import refuse_if_behind
    from lineage.erasure import service

    refuse_if_behind(request)  # never a manifest from part of the graph: it would miss what is still queued
    with db.connection() as conn:
        return service.erase(conn, actor, body.source, body.reason)


@router.get("", summary="Erasure manifests, newest first")
def list_erasures(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Principal = Depends(require(*ERASURE_READ)), db: Database = Depends(get_db),
) -> dict[str, Any]:
    from lineage.erasure import service

    with db.connection() as conn:
        found = service.list_erasures(conn, limit)
    return {"erasures": found, "totalCount": len(found)}


@router.get("/{erasure_id}", summary="An erasure's manifest: each item done or outstanding, and any re-creation")
def get_erasure(erasure_id: ErasureId, actor: Principal = Depends(require(*ERASURE_READ)), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.erasure import service

    with db.connection() as conn:
        return service.status(conn, erasure_id)


@router.post("/{erasure_id}/items/{item_id}/deletions", status_code=201, summary="Record that a manifest item was deleted")
def record_deletion(
    erasure_id: ErasureId, item_id: ItemId, body: DeletionIn,
    actor: Principal = Depends(require(*ERASURE_RECORD)), db: Database = Depends(get_db),
) -> Any:
    from lineage.erasure import service

    detail = {k: v for k, v in body.model_dump().items() if v is not None}
    with db.connection() as conn:
        before = service.status(conn, erasure_id)
        was = next((i for i in before["items"] if i["id"] == item_id), None)
        item = service.record_deletion(conn, actor, erasure_id, item_id, detail)
    if was is not None and was["state"] == "deleted":
        return JSONResponse(item, status_code=200)
    return item
