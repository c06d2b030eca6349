"""Declared interests and namespace owners: the registries separation of duties reads.

Two admin-managed, append-only registries (SQL in :mod:`lineage.store.governance`):

* **namespace owners** — who owns the jobs of an OpenLineage job namespace.  A registered
  owner of a job that consumes a contract's data may not approve that contract.  Ownership
  comes only from here: an ``ownership`` facet inside a posted event names whoever its sender
  chose, so it proves nothing and is ignored.
* **declared ties** — a principal's ``investment``, ``employment``, ``family`` or ``other`` tie
  to an organisation.  A steward tied to a contract's provider or requester organisation may
  not approve it, and the refusal names the tie.

Names are compared in one normal form: principals and owners by
:func:`lineage.auth.principal.normalise_name`; organisations by :func:`normalise_organisation`
(the same, with full stops and commas dropped and blanks collapsed, so ``LoveMatch, Inc.``
and ``lovematch inc`` are one organisation).  Every write needs a principal holding ``admin``
(:class:`~lineage.errors.Forbidden` otherwise) and records its name, credential and the time.
Entries end by revocation (with a reason), never by deletion.

Functions take an open psycopg connection; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import psycopg

from lineage.auth.principal import Principal, normalise_name
from lineage.errors import BadRequest, Conflict, Forbidden, NotFound
from lineage.store import governance as sql
from lineage.times import iso

KINDS = ("investment", "employment", "family", "other")
MAX_TEXT = 500  # names, organisations, notes and reasons are short; a megabyte "name" is an attack


def normalise_organisation(raw: object, field_name: str = "organisation") -> str:
    """The form organisations are compared in (see the module docstring)."""
    text = normalise_name(_text(raw, field_name), field_name)
    text = re.sub(r"\s+", " ", re.sub(r"[.,]", " ", text)).strip()
    if not text:
        raise BadRequest(field_name, "must name an organisation")
    return text


@dataclass(frozen=True)
class Owner:
    id: int
    namespace: str
    owner: str
    recorded_by: str
    credential: str
    recorded_at: dt.datetime
    revoked_reason: str | None = None
    revoked_by: str | None = None
    revoked_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "namespace": self.namespace, "owner": self.owner,
            "recordedBy": self.recorded_by, "credential": self.credential, "recordedAt": iso(self.recorded_at),
            "revoked": _revocation(self.revoked_reason, self.revoked_by, self.revoked_at),
        }


@dataclass(frozen=True)
class Tie:
    id: int
    principal: str
    organisation: str
    organisation_name: str
    kind: str
    note: str | None
    recorded_by: str
    credential: str
    recorded_at: dt.datetime
    revoked_reason: str | None = None
    revoked_by: str | None = None
    revoked_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "principal": self.principal, "organisation": self.organisation_name,
            "organisationKey": self.organisation, "kind": self.kind, "note": self.note,
            "recordedBy": self.recorded_by, "credential": self.credential, "recordedAt": iso(self.recorded_at),
            "revoked": _revocation(self.revoked_reason, self.revoked_by, self.revoked_at),
        }


def _revocation(reason: str | None, by: str | None, at: dt.datetime | None) -> dict[str, Any] | None:
    return None if at is None else {"reason": reason, "by": by, "at": iso(at)}


def _admin(actor: Principal) -> None:
    if not actor.has("admin"):
        raise Forbidden(f"`{actor.name}` may not change the governance registries: that needs the `admin` role")


def _text(raw: object, field_name: str, required: bool = True) -> str:
    if raw is None and not required:
        return ""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest(field_name, "must be a non-empty string")
    if len(raw) > MAX_TEXT or "\x00" in raw:
        raise BadRequest(field_name, f"must be at most {MAX_TEXT} characters of text")
    return raw.strip()


# -- namespace owners ----------------------------------------------------------------------------


def add_owner(conn: psycopg.Connection, actor: Principal, namespace: str, owner: str) -> Owner:
    """Record ``owner`` as an owner of job namespace ``namespace``; the same active pair twice is a no-op."""
    _admin(actor)
    ns = _text(namespace, "namespace")
    who = normalise_name(_text(owner, "owner"), "owner")
    sql.lock(conn, f"owner:{ns}")
    existing = sql.active_owner(conn, ns, who)
    if existing:
        return Owner(**existing)
    return Owner(**sql.insert_owner(conn, ns, who, actor.name, actor.credential))


def revoke_owner(conn: psycopg.Connection, actor: Principal, owner_id: int, reason: str) -> Owner:
    _admin(actor)
    why = _text(reason, "reason")
    row = sql.owner_row(conn, owner_id)
    if row is None:
        raise NotFound("namespace owner", str(owner_id))
    sql.lock(conn, f"owner:{row['namespace']}")
    row = sql.owner_row(conn, owner_id)
    if row and row["revoked_at"] is not None:
        raise Conflict(f"namespace owner #{owner_id} (`{row['owner']}` of `{row['namespace']}`) is already revoked")
    sql.revoke_owner(conn, owner_id, why, actor.name, actor.credential)
    return Owner(**sql.owner_row(conn, owner_id))  # type: ignore[arg-type]


def list_owners(conn: psycopg.Connection, namespace: str | None = None, include_revoked: bool = False) -> list[Owner]:
    return [Owner(**r) for r in sql.owner_rows(conn, namespace, active_only=not include_revoked)]


# -- declared ties -------------------------------------------------------------------------------


def add_tie(conn: psycopg.Connection, actor: Principal, principal: str, organisation: str, kind: str, note: str | None = None) -> Tie:
    """Record that ``principal`` has a ``kind`` tie to ``organisation``."""
    _admin(actor)
    who = normalise_name(_text(principal, "principal"), "principal")
    org_name = _text(organisation, "organisation")
    org = normalise_organisation(org_name)
    if kind not in KINDS:
        raise BadRequest("kind", f"`{kind}` is not a kind of tie; one of {', '.join(KINDS)}")
    text = _text(note, "note", required=False) or None
    sql.lock(conn, f"tie:{who}")
    return Tie(**sql.insert_tie(conn, who, org, org_name, kind, text, actor.name, actor.credential))


def revoke_tie(conn: psycopg.Connection, actor: Principal, tie_id: int, reason: str) -> Tie:
    _admin(actor)
    why = _text(reason, "reason")
    row = sql.tie_row(conn, tie_id)
    if row is None:
        raise NotFound("tie", str(tie_id))
    sql.lock(conn, f"tie:{row['principal']}")
    row = sql.tie_row(conn, tie_id)
    if row and row["revoked_at"] is not None:
        raise Conflict(f"tie #{tie_id} (`{row['principal']}` to `{row['organisation_name']}`) is already revoked")
    sql.revoke_tie(conn, tie_id, why, actor.name, actor.credential)
    return Tie(**sql.tie_row(conn, tie_id))  # type: ignore[arg-type]


def list_ties(conn: psycopg.Connection, principal: str | None = None, include_revoked: bool = False) -> list[Tie]:
    who = normalise_name(_text(principal, "principal"), "principal") if principal is not None else None
    return [Tie(**r) for r in sql.tie_rows(conn, who, active_only=not include_revoked)]


def active_ties(conn: psycopg.Connection, principal_name: str) -> list[Tie]:
    """The ties in force for a principal (by its normalised name)."""
    return [Tie(**r) for r in sql.tie_rows(conn, principal_name, active_only=True)]
