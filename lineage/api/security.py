"""Who may call what: the one FastAPI dependency every route's authorisation goes through.

``Depends(require("steward"))`` authenticates the request (:mod:`lineage.auth.authenticate`)
and returns the :class:`~lineage.auth.Principal` when it holds at least one of the roles;
``require()`` with no role admits any authenticated principal.  No credential, or one that
proves nothing (malformed, wrong secret, expired, revoked, a JWT that fails verification), is
a 401 with ``WWW-Authenticate: Bearer``; a principal without the role is a 403 naming the
roles it needs.

The decisions, one per route family (``tests/api/test_authz.py`` holds every route to them):

=====================================  ===========================================
ingest (``POST /api/v1/lineage[/batch]``)   ``emitter`` (a scoped token: its job namespaces)
lineage, Marquez reads, contracts reads     ``viewer``, ``auditor``, ``steward``, ``requester``
register a contract version                 ``requester``
approve, revoke a contract                  ``steward``
gate check                                  ``emitter`` (the Airflow gate's service token), ``steward``
gate decision log                           ``auditor``, ``steward``
tokens and role grants                      ``admin``
``whoami``                                  any authenticated principal
health, ``/openapi.json``, ``/docs``        no credential (liveness probes, API discovery)
=====================================  ===========================================

Reads are open to every role whose work needs them (a requester reads the contracts it
registers, a steward the lineage behind what it approves) but not to ``admin`` or
``emitter``: no role implies another, so a token administrator or an ingesting service sees
lineage only when also granted ``viewer``.

The OpenAPI document declares one security scheme, HTTP bearer (API tokens and OIDC access
tokens alike).  The proxy identity header is not an OpenAPI scheme: it is honoured only from
``LINEAGE_TRUSTED_PROXIES``, which is deployment, not API (see the README).
"""

from __future__ import annotations

from typing import Callable

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lineage.auth import Principal
from lineage.auth.errors import MissingRole, OutOfScope, Unauthenticated
from lineage.errors import FieldProblem

READ = ("viewer", "auditor", "steward", "requester")
EMIT = ("emitter",)
REGISTER = ("requester",)
DECIDE = ("steward",)
GATE_CHECK = ("emitter", "steward")
DECISION_LOG = ("auditor", "steward")
ADMIN = ("admin",)

#: How ``lineage serve`` runs uvicorn.  Its proxy-headers middleware (on by default) replaces
#: the TCP peer with the ``X-Forwarded-For`` value whenever the connection comes from
#: ``--forwarded-allow-ips`` (127.0.0.1 by default), so anyone on the host could name a trusted
#: proxy as their address and any person in the identity header.  The peer that
#: ``LINEAGE_TRUSTED_PROXIES`` is compared with must be the socket's; a server started another
#: way must turn that rewriting off too (uvicorn ``--no-proxy-headers``).
SERVE_OPTIONS: dict[str, object] = {"proxy_headers": False}

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API token (`lin_<id>_<secret>`, from `lineage tokens create`) or an OIDC access token from the configured identity provider.",
)


def authenticate(request: Request) -> Principal:
    """The request's principal (cached on the request), or :class:`Unauthenticated`."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = request.app.state.authenticator
    identities = request.headers.getlist(auth.proxy_header)
    if anonymous_allowed(request, identities):
        request.state.principal = ANONYMOUS
        return ANONYMOUS
    if len(identities) > 1 and auth.trusts_peer(request.client.host if request.client else None):
        # A proxy that appends its header to the client's instead of replacing it: whichever
        # came first would be believed.  Refuse rather than guess.
        raise Unauthenticated(f"the proxy's {auth.proxy_header} header was sent more than once")
    principal = auth.authenticate(
        request.app.state.db.connection,
        request.headers.get("authorization"),
        identities[0] if identities else None,
        request.client.host if request.client else None,
    )
    request.state.principal = principal
    return principal


#: Who a credential-less read is, when ``LINEAGE_ANONYMOUS_VIEWER`` is on: a viewer, nothing more.
ANONYMOUS = Principal(name="anonymous", credential="anonymous", roles=frozenset({"viewer"}))


def anonymous_allowed(request: Request, identities: list[str]) -> bool:
    """A GET or HEAD with no credential at all (no Authorization, no identity header), when the
    setting is on.  Anything presented is checked as usual: a bad token stays a 401."""
    return (getattr(request.app.state.settings, "anonymous_viewer", False) and request.method in ("GET", "HEAD")
            and "authorization" not in request.headers and not identities)


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting principals that hold any of ``roles`` (any principal if none)."""

    def dependency(request: Request, _: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        principal = authenticate(request)
        if roles and not principal.has(*roles):
            raise MissingRole(principal.name, roles, f"{request.method} {request.url.path}")
        return principal

    dependency.__name__ = f"require_{'_or_'.join(roles) or 'any'}"
    dependency.roles = roles  # type: ignore[attr-defined]  # read by the route table test
    return dependency


def scope_problem(principal: Principal, kind: str, job_namespace: str | None) -> str | None:
    """Why ``principal`` may not send an event of this kind and job namespace, or None."""
    if principal.namespaces is None:
        return None
    if kind == "dataset" or job_namespace is None:
        return "a token scoped to job namespaces may only send run and job events (a DatasetEvent names no job)"
    if not principal.may_emit_for(job_namespace):
        allowed = ", ".join(f"`{n}`" for n in sorted(principal.namespaces))
        return f"`{job_namespace}` is outside this token's scope ({allowed})"
    return None


class ScopeProblem(FieldProblem):
    """A batch item refused for the token's namespace scope (not malformed): counted apart by
    :mod:`lineage.metrics`."""


def check_scope(principal: Principal, kind: str, job_namespace: str | None) -> None:
    problem = scope_problem(principal, kind, job_namespace)
    if problem is not None:
        raise OutOfScope(problem)
