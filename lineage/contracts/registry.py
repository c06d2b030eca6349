"""The contract registry in PostgreSQL: register, approve, revoke, expire; read the current state.

Every change appends a row to ``contract_versions`` (who, when, why); registering a new document
revision also appends to ``contract_documents`` and ``contract_dataset_links``.  Nothing is
updated or deleted, and the tables' triggers refuse it.  The current state of a contract is its
highest version; the state the gate obeys is its *governing* version (its latest approval,
unless revoked or expired since: see :mod:`lineage.store.contracts`), so registering a new
revision of an approved contract does not take it out of force until that revision is approved.
Changes to one contract are serialised with a transaction-scoped advisory lock, so concurrent
approvals cannot both win.  The SQL lives in :mod:`lineage.store.contracts`.

Rules enforced here (each a specific error):

* approving needs a steward who is neither the contract's requester, nor whoever registered it,
  nor an owner (OpenLineage ``ownership`` facet) of a job downstream of its datasets:
  :class:`~lineage.errors.SelfApprovalRefused`;
* only a ``proposed`` contract can be approved, and not after its expiry date; revoking needs a
  reason; a revoked contract comes back only as a newly registered revision:
  :class:`~lineage.errors.Conflict`.

Functions take an open psycopg connection; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

import psycopg

from lineage.times import iso
from lineage.contracts.document import ContractDocument
from lineage.contracts.terms import ContractTerms
from lineage.errors import BadRequest, Conflict, NotFound, SelfApprovalRefused
from lineage.store import contracts as sql


@dataclass(frozen=True)
class VersionRow:
    version: int
    revision: int
    action: str
    status: str
    actor: str
    reason: str | None
    recorded_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "recorded_at": iso(self.recorded_at)}


@dataclass(frozen=True)
class ContractState:
    """A contract's current version, with the terms of the revision it refers to."""

    id: str
    version: int
    revision: int
    status: str
    actor: str
    reason: str | None
    recorded_at: dt.datetime
    terms: ContractTerms
    sha256: str
    source_file: str | None
    registered_by: str
    history: tuple[VersionRow, ...] = field(default=())
    document: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        """``id@version``: how decisions and messages name the exact state consulted."""
        return f"{self.id}@{self.version}"

    def as_dict(self, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "revision": self.revision,
            "status": self.status,
            "changedBy": self.actor,
            "reason": self.reason,
            "changedAt": iso(self.recorded_at),
            "registeredBy": self.registered_by,
            "sourceFile": self.source_file,
            "sha256": self.sha256,
            "terms": self.terms.to_json(),
        }
        if full:
            out["history"] = [h.as_dict() for h in self.history]
            out["document"] = self.document
        return out


def _state(row: dict[str, Any], history: Iterable[VersionRow] = (), full: bool = False) -> ContractState:
    return ContractState(
        id=row["contract_id"],
        version=row["version"],
        revision=row["revision"],
        status=row["status"],
        actor=row["actor"],
        reason=row["reason"],
        recorded_at=row["recorded_at"],
        terms=ContractTerms.from_json(row["terms"]),
        sha256=row["sha256"],
        source_file=row["source_file"],
        registered_by=row["registered_by"],
        history=tuple(history),
        document=row["document"] if full else None,
    )


def current(conn: psycopg.Connection, contract_id: str) -> ContractState | None:
    """The contract's highest version (what a steward acts on), or None if unknown."""
    row = sql.current_row(conn, contract_id)
    return _state(row) if row else None


def get(conn: psycopg.Connection, contract_id: str) -> ContractState:
    """The current state with its full history and document; :class:`NotFound` if unknown."""
    row = sql.current_row(conn, contract_id)
    if row is None:
        raise NotFound("contract", contract_id)
    return _state(row, (VersionRow(**r) for r in sql.version_rows(conn, contract_id)), full=True)


def list_contracts(conn: psycopg.Connection) -> list[ContractState]:
    return [_state(r) for r in sql.current_rows(conn)]


def register(conn: psycopg.Connection, doc: ContractDocument, actor: str | None = None) -> ContractState:
    """Record a new revision of a contract (status ``proposed``); the same document twice is a no-op."""
    cid = doc.id
    sql.lock(conn, cid)
    latest = sql.latest_document(conn, cid)
    if latest and latest[1] == doc.sha256:
        state = current(conn, cid)
        if state is not None and state.status != "revoked":
            return state
    revision = (latest[0] if latest else 0) + 1
    who = actor or doc.terms.requester
    sql.insert_document(
        conn, cid, revision, doc.document, doc.terms.to_json(), doc.sha256, doc.source_file, who,
        [(d.namespace, d.name, d.schema) for d in doc.terms.datasets],
    )
    why = f"registered revision {revision} from {doc.source_file}"
    sql.append_version(conn, cid, revision, "register", "proposed", who, why)
    return current(conn, cid)  # type: ignore[return-value]


def approve(conn: psycopg.Connection, contract_id: str, user: str, reason: str | None = None, today: dt.date | None = None) -> ContractState:
    """Approve the current revision as steward ``user``, enforcing separation of duties."""
    user = _who(user)
    sql.lock(conn, contract_id)
    state = current(conn, contract_id)
    if state is None:
        raise NotFound("contract", contract_id)
    if state.status != "proposed":
        raise Conflict(
            f"contract `{state.ref}` is {state.status}, not proposed: "
            + ("nothing to do" if state.status == "approved" else "register a new revision to approve it again")
        )
    role = _conflict_of_interest(conn, state, user)
    if role:
        raise SelfApprovalRefused(state.ref, user, role)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if state.terms.expires and state.terms.expires < today:
        raise Conflict(f"contract `{state.ref}` expired on {state.terms.expires}: register a revision with a later `expires`")
    sql.append_version(conn, contract_id, state.revision, "approve", "approved", user, reason or "approved")
    return current(conn, contract_id)  # type: ignore[return-value]


def revoke(conn: psycopg.Connection, contract_id: str, user: str, reason: str) -> ContractState:
    """Revoke a contract; the gate blocks every later run that depends on it."""
    user = _who(user)
    if not reason or not reason.strip():
        raise BadRequest("reason", "revoking a contract needs a reason (it is kept in the contract's history)")
    sql.lock(conn, contract_id)
    state = current(conn, contract_id)
    if state is None:
        raise NotFound("contract", contract_id)
    if state.status in ("revoked", "expired"):
        raise Conflict(f"contract `{state.ref}` is already {state.status}")
    sql.append_version(conn, contract_id, state.revision, "revoke", "revoked", user, reason.strip())
    return current(conn, contract_id)  # type: ignore[return-value]


def expire_due(conn: psycopg.Connection, today: dt.date | None = None) -> list[str]:
    """Record an ``expire`` version for every approved contract past its expiry date."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    expired = []
    for state in list_contracts(conn):
        if state.status == "approved" and state.terms.expires and state.terms.expires < today:
            sql.lock(conn, state.id)
            sql.append_version(conn, state.id, state.revision, "expire", "expired", "system", f"expiry date {state.terms.expires} passed")
            expired.append(state.id)
    return expired


def contracts_for_datasets(conn: psycopg.Connection, datasets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[ContractState]]:
    """For each (namespace, name), the *governing* state of every contract whose governing revision covers it.

    Governing (what the gate obeys; see :mod:`lineage.store.contracts`): the contract's latest
    approved version, unless it was revoked or expired after that approval, in which case its
    current state; for a contract never approved, its current state.  One query for the whole
    set; datasets no contract covers are absent from the result.
    """
    out: dict[tuple[str, str], list[ContractState]] = {}
    for row in sql.governing_rows(conn, datasets):
        out.setdefault((row["dataset_namespace"], row["dataset_name"]), []).append(_state(row))
    return out


def _conflict_of_interest(conn: psycopg.Connection, state: ContractState, user: str) -> str | None:
    """Why ``user`` may not approve ``state``, or None."""
    if _same(user, state.terms.requester):
        return "its requester"
    if _same(user, state.registered_by):
        return "who registered it"
    for job, owner in sql.consumer_owners(conn, state.id, state.revision):
        if owner and _same(user, owner):
            return f"an owner of job `{job}`, which consumes its data"
    return None


def _who(user: str) -> str:
    if not user or not user.strip():
        raise BadRequest("user", "say who is acting (`--as USER`)")
    return user.strip()


def _same(a: str, b: str) -> bool:
    """Owner names in OpenLineage often carry a kind prefix (``user:alice``); compare without it."""
    def norm(x: str) -> str:
        x = x.strip().lower()
        return x.split(":", 1)[1] if ":" in x and "@" not in x.split(":", 1)[0] else x

    return norm(a) == norm(b)
