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
:func:`lineage.auth.principal.normalise_name` (and, for separation of duties, as one person
under :func:`~lineage.auth.principal.same_person`); organisations by their words
(:func:`normalise_organisation`) and :func:`same_organisation`, so ``LoveMatch, Inc.``,
``lovematch inc``, ``Love Match`` and ``LoveMatch`` are one organisation however a contract's
author chooses to spell it.  Every write needs a principal holding ``admin``
(:class:`~lineage.errors.Forbidden` otherwise) and records its name, credential and the time.
Entries end by revocation (with a reason), never by deletion.

Functions take an open psycopg connection; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import psycopg

from lineage.auth.principal import Principal, normalise_name, same_person
from lineage.errors import BadRequest, Conflict, Forbidden, NotFound
from lineage.store import governance as sql
from lineage.times import iso

KINDS = ("investment", "employment", "family", "other")
MAX_TEXT = 500  # names, organisations, notes and reasons are short; a megabyte "name" is an attack


def normalise_organisation(raw: object, field_name: str = "organisation") -> str:
    """The form organisations are compared in: their words, lower-case, one space apart.

    NFKC and case folding as for names (:func:`lineage.auth.principal.normalise_name`, which
    also refuses invisible characters and mixed scripts), symbols (``™``, ``®``) dropped, and
    every run of punctuation or blanks a word break, so ``LoveMatch, Inc.``, ``lovematch inc``
    and ``LoveMatch-Inc`` are one key; a leading ``the`` is dropped.
    """
    text = _text(raw, field_name)
    text = "".join(" " if unicodedata.category(ch)[0] == "S" else ch for ch in text)
    words = _WORD.findall(normalise_name(text, field_name, punctuation=True))
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    if not words:
        raise BadRequest(field_name, "must name an organisation")
    return " ".join(words)


_WORD = re.compile(r"[^\W_]+")


def same_organisation(a: str, b: str) -> bool:
    """Whether two organisation keys (:func:`normalise_organisation`) may name one organisation.

    The organisation is written by whoever drafts a contract (someone with a stake in it), so a
    tie must not be evaded by its spelling: the keys match when one, with its spaces removed,
    is the other's leading words with theirs removed.  ``lovematch`` matches ``lovematch inc``,
    ``love match inc`` and ``lovematch holdings us``; ``love`` does not match ``lovematch``,
    nor ``match group`` ``lovematch inc``.  A tie to a name that is the start of another
    organisation's refuses that one too: the steward is asked to step aside, never let through.
    """
    def prefixes(key: str) -> set[str]:
        words = key.split(" ")
        return {"".join(words[:i]) for i in range(1, len(words) + 1)}

    return a.replace(" ", "") in prefixes(b) or b.replace(" ", "") in prefixes(a)


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


def _not_own(actor: Principal, subject: str, what: str) -> None:
    """Nobody lifts a conflict recorded against themselves: an admin who is also a steward
    could otherwise revoke their own tie or ownership and then approve."""
    if same_person(actor.name, subject):
        raise Forbidden(f"`{actor.name}` may not revoke {what}, which is about themselves: someone else with `admin` must")


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
    _not_own(actor, row["owner"], f"namespace owner #{owner_id}")
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
    _not_own(actor, row["principal"], f"tie #{tie_id}")
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
    """The ties in force for a principal (by its normalised name), recorded under any spelling
    of the same person (:func:`~lineage.auth.principal.same_person`: ``dpo+x@`` is ``dpo@``)."""
    return [Tie(**r) for r in sql.tie_rows(conn, None, active_only=True) if same_person(r["principal"], principal_name)]
