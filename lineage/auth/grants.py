"""Role grants for people: OIDC subjects and proxy identities get their roles here.

A person's identity provider says *who* they are; what they may do in lineage is granted by
an admin, per normalised name (:func:`lineage.auth.normalise_name`), so ``Alice@Example.com``
from the IdP and a grant to ``alice@example.com`` are the same person, and a look-alike
name (``alice@example.com\\u200b``) can be neither granted nor authenticated.

Grants are append-only (migration ``0004``): granting and revoking each add a row, and the
roles held now are those whose latest row is a grant.  API tokens carry their roles
themselves and do not consult grants.
"""

from __future__ import annotations

import psycopg

from lineage.auth.principal import ROLES, normalise_name, same_person
from lineage.errors import BadRequest, Conflict, Forbidden
from lineage.store import auth as store


def _role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest("role", f"unknown role `{role}`; roles are {', '.join(ROLES)}")
    return role


def grant(conn: psycopg.Connection, principal: str, role: str, actor: str, reason: str | None = None) -> store.GrantRow:
    """Grant ``role`` to ``principal``; :class:`Conflict` when it is already held.

    Nobody grants a role to themselves (:class:`Forbidden`, comparing as one person: an admin
    granting ``steward`` to ``their+alias@``): an admin who should also approve contracts is
    made steward by another admin, and the record shows who.
    """
    who, role = normalise_name(principal, "principal"), _role(role)
    if _norm(actor) is not None and same_person(who, _norm(actor)):
        raise Forbidden(f"`{actor}` may not grant a role to themselves: ask someone else with `admin`")
    store.record_grant_lock(conn, who)
    if role in store.roles_of(conn, who):
        raise Conflict(f"`{who}` already holds `{role}`")
    store.record_grant(conn, who, role, "grant", actor, reason)
    _invalidate(conn)
    return next(g for g in store.current_grants(conn, who) if g.role == role)


def revoke(conn: psycopg.Connection, principal: str, role: str, actor: str, reason: str | None = None) -> None:
    """Take ``role`` away from ``principal``; :class:`Conflict` when it is not held."""
    who, role = normalise_name(principal, "principal"), _role(role)
    store.record_grant_lock(conn, who)
    if role not in store.roles_of(conn, who):
        raise Conflict(f"`{who}` does not hold `{role}`; nothing to revoke")
    store.record_grant(conn, who, role, "revoke", actor, reason)
    _invalidate(conn)


def _invalidate(conn: psycopg.Connection) -> None:
    """Roles changed: cached verifications in this process must not outlive the change.

    Committed first, so a check racing the change either sees it or is not cached.
    """
    from lineage.auth.authenticate import invalidate

    conn.commit()
    invalidate()


def _norm(name: str) -> str | None:
    try:
        return normalise_name(name)
    except BadRequest:
        return None


def roles_for(conn: psycopg.Connection, name: str) -> frozenset[str]:
    """The roles the person ``name`` (already normalised) holds now."""
    return frozenset(store.roles_of(conn, name))


def current(conn: psycopg.Connection, principal: str | None = None) -> list[store.GrantRow]:
    who = normalise_name(principal, "principal") if principal else None
    return store.current_grants(conn, who)
