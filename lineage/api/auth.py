"""Identity administration over HTTP (``/api/v1/auth``): API tokens, role grants, whoami.

Every route but ``whoami`` needs ``admin``; the acting admin is the authenticated principal
and is recorded as ``createdBy`` / ``revokedBy`` / ``grantedBy``.

``POST /api/v1/auth/tokens``                {name, principal, roles, namespaces?, expiresAt?} → 201, the token once
``GET  /api/v1/auth/tokens``                every token, live and revoked, without secrets
``POST /api/v1/auth/tokens/{name}/revoke``  → the revoked token
``POST /api/v1/auth/grants``                {principal, role, reason?} → 201
``POST /api/v1/auth/grants/revoke``         {principal, role, reason?}
``GET  /api/v1/auth/grants[?principal=P]``  roles held now
``GET  /api/v1/auth/whoami``                the caller: name, credential, roles, scope
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lineage.api.deps import Text, UtcTime, get_db
from lineage.api.security import ADMIN, require
from lineage.auth import Principal, grants, tokens
from lineage.auth.principal import normalise_name, same_person
from lineage.errors import Forbidden
from lineage.store.db import Database

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenRequest(BaseModel):
    name: Text = Field(..., min_length=1, max_length=200, description="Unique, never reused: e.g. `airflow-prod`.")
    principal: Text = Field(..., min_length=1, max_length=320, description="Who the token acts as (normalised).")
    roles: list[Text] = Field(..., min_length=1, max_length=6, description="Roles the token holds.")
    namespaces: list[Text] | None = Field(None, max_length=1000, description="Job namespaces an emitter may send for; omit for any.")
    expiresAt: UtcTime | None = Field(None, description="When the token stops working; omit for never.")


class GrantRequest(BaseModel):
    principal: Text = Field(..., min_length=1, max_length=320, description="A person's name as the identity provider gives it.")
    role: Text = Field(..., min_length=1, max_length=20)
    reason: Text | None = Field(None, max_length=2000)


@router.post("/tokens", status_code=201, summary="Create an API token (the secret is shown once)")
def create_token(body: TokenRequest, admin: Principal = Depends(require(*ADMIN)), db: Database = Depends(get_db)) -> JSONResponse:
    # A token acting as oneself with roles one does not hold is a self-grant (see grants.grant).
    extra = set(body.roles) - admin.roles
    if extra and same_person(admin.name, normalise_name(body.principal, "principal")):
        raise Forbidden(f"`{admin.name}` may not give themselves {', '.join(sorted(extra))} through a token: ask someone else with `admin`")
    with db.connection() as conn:
        row, secret = tokens.create(conn, name=body.name, principal=body.principal, roles=body.roles,
                                    namespaces=body.namespaces, expires_at=body.expiresAt, created_by=admin.name)
    return JSONResponse({**row.as_dict(), "token": secret}, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/tokens", summary="Every API token, without secrets")
def list_tokens(_: Principal = Depends(require(*ADMIN)), db: Database = Depends(get_db)) -> dict[str, Any]:
    with db.connection() as conn:
        rows = tokens.list_all(conn)
    return {"tokens": [r.as_dict() for r in rows]}


@router.post("/tokens/{name}/revoke", summary="Revoke an API token; it authenticates nobody from now on")
def revoke_token(name: Text = Path(..., max_length=200), admin: Principal = Depends(require(*ADMIN)),
                 db: Database = Depends(get_db)) -> dict[str, Any]:
    with db.connection() as conn:
        return tokens.revoke(conn, name, admin.name).as_dict()


@router.post("/grants", status_code=201, summary="Grant a role to a person (OIDC or proxy identity)")
def add_grant(body: GrantRequest, admin: Principal = Depends(require(*ADMIN)), db: Database = Depends(get_db)) -> dict[str, Any]:
    with db.connection() as conn:
        return grants.grant(conn, body.principal, body.role, admin.name, body.reason).as_dict()


@router.post("/grants/revoke", summary="Take a role away from a person")
def revoke_grant(body: GrantRequest, admin: Principal = Depends(require(*ADMIN)), db: Database = Depends(get_db)) -> dict[str, Any]:
    with db.connection() as conn:
        grants.revoke(conn, body.principal, body.role, admin.name, body.reason)
        held = grants.current(conn, body.principal)
    return {"principal": grants.normalise_name(body.principal, "principal"), "roles": sorted(g.role for g in held)}


@router.get("/grants", summary="Roles granted to people, as held now")
def list_grants(principal: Text | None = Query(None, max_length=320), _: Principal = Depends(require(*ADMIN)),
                db: Database = Depends(get_db)) -> dict[str, Any]:
    with db.connection() as conn:
        return {"grants": [g.as_dict() for g in grants.current(conn, principal)]}


@router.get("/whoami", summary="The authenticated caller, its roles and scope")
def whoami(principal: Principal = Depends(require())) -> dict[str, Any]:
    return {
        "name": principal.name,
        "credential": principal.credential,
        "roles": sorted(principal.roles),
        "namespaces": sorted(principal.namespaces) if principal.namespaces is not None else None,
    }
