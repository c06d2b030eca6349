"""HTTP API for the governance registries (``/api/v1/governance``): declared ties and namespace owners.

Writes need ``admin`` and record the authenticated principal and its credential; reads need
``admin`` or ``auditor``.  Handlers are thin over :mod:`lineage.contracts.governance` (which
normalises names and refuses bad input with a 400 naming the field); no SQL here.

    ``POST /api/v1/governance/ties``              ``{"principal", "organisation", "kind", "note"?}`` → 201, the tie
    ``GET  /api/v1/governance/ties[?principal=&includeRevoked=]``
    ``POST /api/v1/governance/ties/{id}/revoke``  ``{"reason"}`` → the tie, with its revocation
    ``POST /api/v1/governance/owners``            ``{"namespace", "owner"}`` → 201, the owner entry
    ``GET  /api/v1/governance/owners[?namespace=&includeRevoked=]``
    ``POST /api/v1/governance/owners/{id}/revoke`` ``{"reason"}``

``kind`` is one of ``investment``, ``employment``, ``family``, ``other``.  Entries are never
deleted: revoking appends a revocation, and ``includeRevoked=true`` lists them too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lineage.api.deps import Text, get_db
from lineage.api.security import ADMIN, require
from lineage.auth.principal import Principal
from lineage.store.db import Database

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])

as_admin = require(*ADMIN)
as_reader = require("admin", "auditor")

EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The entry's id.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TieIn(_Body):
    principal: Text = Field(..., min_length=1, max_length=500, description="The principal's name (e.g. an email).")
    organisation: Text = Field(..., min_length=1, max_length=500, description="The organisation, as its contracts name it.")
    kind: Text = Field(..., description="investment, employment, family or other.")
    note: Text | None = Field(None, max_length=500)


class OwnerIn(_Body):
    namespace: Text = Field(..., min_length=1, max_length=500, description="An OpenLineage job namespace.")
    owner: Text = Field(..., min_length=1, max_length=500, description="The owning principal's name.")


class RevokeIn(_Body):
    reason: Text = Field(..., min_length=1, max_length=500)


@router.post("/ties", status_code=201, summary="Declare a principal's tie to an organisation")
def add_tie(body: TieIn, actor: Principal = Depends(as_admin), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import governance

    with db.connection() as conn:
        return governance.add_tie(conn, actor, body.principal, body.organisation, body.kind, body.note).as_dict()


@router.get("/ties", summary="Declared ties (in force, or all)")
def list_ties(
    principal: Annotated[Text | None, Query(max_length=500)] = None,
    include_revoked: Annotated[bool, Query(alias="includeRevoked")] = False,
    actor: Principal = Depends(as_reader), db: Database = Depends(get_db),
) -> dict[str, Any]:
    from lineage.contracts import governance

    with db.connection() as conn:
        ties = governance.list_ties(conn, principal, include_revoked)
    return {"ties": [t.as_dict() for t in ties], "totalCount": len(ties)}


@router.post("/ties/{tie_id}/revoke", summary="Revoke a declared tie (it stays in the record)")
def revoke_tie(tie_id: EntryId, body: RevokeIn, actor: Principal = Depends(as_admin), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import governance

    with db.connection() as conn:
        return governance.revoke_tie(conn, actor, tie_id, body.reason).as_dict()


@router.post("/owners", status_code=201, summary="Register an owner of a job namespace")
def add_owner(body: OwnerIn, actor: Principal = Depends(as_admin), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import governance

    with db.connection() as conn:
        return governance.add_owner(conn, actor, body.namespace, body.owner).as_dict()


@router.get("/owners", summary="Registered namespace owners (in force, or all)")
def list_owners(
    namespace: Annotated[Text | None, Query(max_length=500)] = None,
    include_revoked: Annotated[bool, Query(alias="includeRevoked")] = False,
    actor: Principal = Depends(as_reader), db: Database = Depends(get_db),
) -> dict[str, Any]:
    from lineage.contracts import governance

    with db.connection() as conn:
        owners = governance.list_owners(conn, namespace, include_revoked)
    return {"owners": [o.as_dict() for o in owners], "totalCount": len(owners)}


@router.post("/owners/{owner_id}/revoke", summary="Revoke a namespace owner entry (it stays in the record)")
def revoke_owner(owner_id: EntryId, body: RevokeIn, actor: Principal = Depends(as_admin), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import governance

    with db.connection() as conn:
        return governance.revoke_owner(conn, actor, owner_id, body.reason).as_dict()
