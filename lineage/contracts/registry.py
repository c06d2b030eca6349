"""The contract registry in PostgreSQL: register, approve, revoke, expire; read the current state.

Every change appends a row to ``contract_versions`` (who — an authenticated
:class:`~lineage.auth.principal.Principal`'s normalised name —, with which credential, when and
why); registering a new document revision also appends to ``contract_documents`` and
``contract_dataset_links``.  Nothing is updated or deleted, and the tables' triggers refuse it.
The current state of a contract is its highest version; the state the gate obeys is its
*governing* version (its latest approval, unless revoked or expired since: see
:mod:`lineage.store.contracts`), so registering a new revision of an approved contract does not
take it out of force until that revision is approved.  Changes to one contract are serialised
with a transaction-scoped advisory lock, so concurrent approvals cannot both win.  The SQL lives
in :mod:`lineage.store.contracts`.

Rules enforced here (each a specific error):

* roles: registering needs ``requester``; approving, revoking and expiring need ``steward``
  (:class:`~lineage.errors.Forbidden`);
* separation of duties, comparing normalised names (:func:`~lineage.auth.principal.normalise_name`)
  as one person (:func:`~lineage.auth.principal.same_person`: ``ml-lead+x@example.com.`` is
  ``ml-lead@example.com``): the approving steward is neither the contract's requester (its
  terms), nor whoever registered the revision, nor a registered owner (``namespace_owners``;
  never an event's ``ownership`` facet) of a job downstream of its datasets:
  :class:`~lineage.errors.SelfApprovalRefused`.  A stored name with no normal form refuses
  (:class:`~lineage.errors.Conflict`) instead of matching nobody;
* declared interests: a steward with a tie (:mod:`lineage.contracts.governance`) to the
  contract's provider or to its ``requesterOrganization`` may not approve it:
  :class:`InterestRefused`, naming the tie;
* four eyes: a contract whose data categories include a special category
  (:data:`SPECIAL_CATEGORIES` and their sub-keys, plus the organisation's
  ``LINEAGE_SPECIAL_CATEGORIES``) is approved only by two different stewards.  The first
  approval is recorded as action ``endorse`` with the status staying ``proposed`` (so the gate
  keeps blocking, saying one more steward is needed); the second, by a different independent
  steward, records ``approve``.  The same steward again is a :class:`~lineage.errors.Conflict`;
  a first approval whose steward has since become conflicted (a tie declared, an ownership
  registered) no longer counts;
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

from lineage.auth.principal import Principal, normalise_name, same_person
from lineage.times import iso
from lineage.contracts.document import ContractDocument
from lineage.contracts.taxonomy import overlaps
from lineage.contracts.terms import ContractTerms
from lineage.errors import BadRequest, Conflict, Forbidden, NotFound, SelfApprovalRefused
from lineage.store import contracts as sql

#: Special categories of personal data (GDPR art. 9, and precise location) as Fides keys; a
#: contract holding any of them, a sub-key or a parent key needs two stewards' approval.
SPECIAL_CATEGORIES: tuple[str, ...] = (
    "user.biometric",
    "user.demographic.race_ethnicity",
    "user.demographic.religious_belief",
    "user.health_and_medical",
    "user.location.precise",
)


class InterestRefused(SelfApprovalRefused):
    """A steward with a declared tie to the contract's provider or requester organisation."""

    def __init__(self, contract: str, user: str, tie: str, party: str) -> None:
        self.contract, self.user, self.role = contract, user, f"tied to {party}"
        Forbidden.__init__(
            self,
            f"`{user}` may not approve contract `{contract}`: `{user}` has {tie}, {party}; "
            "approval needs an independent steward with no declared interest in either party",
        )


@dataclass(frozen=True)
class VersionRow:
    version: int
    revision: int
    action: str
    status: str
    actor: str
    reason: str | None
    recorded_at: dt.datetime
    credential: str | None = None

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
    #: what the current version did: ``register``, ``endorse`` (first of two approvals), ...
    action: str = "register"
    credential: str | None = None
    registered_credential: str | None = None

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
            "action": self.action,
            "changedBy": self.actor,
            "changedWith": self.credential,
            "reason": self.reason,
            "changedAt": iso(self.recorded_at),
            "registeredBy": self.registered_by,
            "registeredWith": self.registered_credential,
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
        action=row["action"],
        credential=row["credential"],
        registered_credential=row["registered_credential"],
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


def register(conn: psycopg.Connection, doc: ContractDocument, actor: Principal) -> ContractState:
    """Record a new revision of a contract (status ``proposed``) registered by ``actor``.

    The same document twice is a no-op (whoever sends it).  The registrant is recorded apart
    from the requester the terms name, and may not approve the revision either.
    """
    _needs(actor, "requester", "register contracts")
    cid = doc.id
    sql.lock(conn, cid)
    latest = sql.latest_document(conn, cid)
    if latest and latest[1] == doc.sha256:
        state = current(conn, cid)
        if state is not None and state.status != "revoked":
            return state
    revision = (latest[0] if latest else 0) + 1
    sql.insert_document(
        conn, cid, revision, doc.document, doc.terms.to_json(), doc.sha256, doc.source_file, actor.name, actor.credential,
        [(d.namespace, d.name, d.schema) for d in doc.terms.datasets],
    )
    why = f"registered revision {revision} from {doc.source_file}"
    sql.append_version(conn, cid, revision, "register", "proposed", actor.name, actor.credential, why)
    return current(conn, cid)  # type: ignore[return-value]


def approve(
    conn: psycopg.Connection,
    contract_id: str,
    actor: Principal,
    reason: str | None = None,
    today: dt.date | None = None,
    special_categories: Iterable[str] = (),
) -> ContractState:
    """Approve the current revision as steward ``actor``, enforcing separation of duties,
    declared interests and, for special categories, four eyes.

    ``special_categories`` adds the organisation's own keys to :data:`SPECIAL_CATEGORIES`.
    Returns the new state: ``approved``, or ``proposed`` with action ``endorse`` when this was
    the first of two approvals.
    """
    _needs(actor, "steward", "approve contracts")
    sql.lock(conn, contract_id)
    state = current(conn, contract_id)
    if state is None:
        raise NotFound("contract", contract_id)
    if state.status != "proposed":
        raise Conflict(
            f"contract `{state.ref}` is {state.status}, not proposed: "
            + ("nothing to do" if state.status == "approved" else "register a new revision to approve it again")
        )
    _check_independent(conn, state, actor.name)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if state.terms.expires and state.terms.expires < today:
        raise Conflict(f"contract `{state.ref}` expired on {state.terms.expires}: register a revision with a later `expires`")
    special = special_categories_of(state.terms, special_categories)
    if special:
        earlier = sql.endorsers(conn, contract_id, state.revision)
        if any(same_person(actor.name, _norm(e) or e) for e in earlier):
            raise Conflict(
                f"`{actor.name}` has already approved revision {state.revision} of `{state.id}`; its special categories "
                f"({', '.join(special)}) need a second approval from a different independent steward"
            )
        # A first approval counts only while its steward is still independent.
        if not any(_independent(conn, state, e) for e in earlier):
            sql.append_version(conn, contract_id, state.revision, "endorse", "proposed", actor.name, actor.credential, reason or "approved (1 of 2)")
            return current(conn, contract_id)  # type: ignore[return-value]
    sql.append_version(conn, contract_id, state.revision, "approve", "approved", actor.name, actor.credential, reason or "approved")
    return current(conn, contract_id)  # type: ignore[return-value]


def revoke(conn: psycopg.Connection, contract_id: str, actor: Principal, reason: str) -> ContractState:
    """Revoke a contract; the gate blocks every later run that depends on it."""
    _needs(actor, "steward", "revoke contracts")
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest("reason", "revoking a contract needs a reason (it is kept in the contract's history)")
    sql.lock(conn, contract_id)
    state = current(conn, contract_id)
    if state is None:
        raise NotFound("contract", contract_id)
    if state.status in ("revoked", "expired"):
        raise Conflict(f"contract `{state.ref}` is already {state.status}")
    sql.append_version(conn, contract_id, state.revision, "revoke", "revoked", actor.name, actor.credential, reason.strip())
    return current(conn, contract_id)  # type: ignore[return-value]


def expire_due(conn: psycopg.Connection, actor: Principal, today: dt.date | None = None) -> list[str]:
    """Record an ``expire`` version, by steward ``actor``, for every approved contract past its expiry date."""
    _needs(actor, "steward", "expire contracts")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    expired = []
    for state in list_contracts(conn):
        if state.status == "approved" and state.terms.expires and state.terms.expires < today:
            sql.lock(conn, state.id)
            sql.append_version(
                conn, state.id, state.revision, "expire", "expired", actor.name, actor.credential, f"expiry date {state.terms.expires} passed"
            )
            expired.append(state.id)
    return expired


def special_categories_of(terms: ContractTerms, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The data categories of ``terms`` that are special (or hold a special sub-category)."""
    rules = (*SPECIAL_CATEGORIES, *extra)
    return tuple(c for c in terms.data_categories if any(overlaps(c, r) for r in rules))


def contracts_for_datasets(
    conn: psycopg.Connection, datasets: Iterable[tuple[str, str]], as_of: dt.datetime | None = None
) -> dict[tuple[str, str], list[ContractState]]:
    """For each (namespace, name), the *governing* state of every contract whose governing revision covers it.

    Governing (what the gate obeys; see :mod:`lineage.store.contracts`): the contract's latest
    approved version, unless it was revoked or expired after that approval, in which case its
    current state; for a contract never approved, its current state.  One query for the whole
    set; datasets no contract covers are absent from the result.  ``as_of``: as it stood then.
    """
    out: dict[tuple[str, str], list[ContractState]] = {}
    for row in sql.governing_rows(conn, datasets, as_of):
        out.setdefault((row["dataset_namespace"], row["dataset_name"]), []).append(_state(row))
    return out


def _check_independent(conn: psycopg.Connection, state: ContractState, name: str) -> None:
    """Raise why the principal called ``name`` may not approve ``state``, if anything.

    Fails closed: a stored requester, registrant or owner name with no normal form (recorded
    under older, looser rules) cannot be shown to be someone else, so it refuses.
    """
    if _same(state, name, state.terms.requester, "its requester"):
        raise SelfApprovalRefused(state.ref, name, "its requester")
    if _same(state, name, state.registered_by, "who registered it"):
        raise SelfApprovalRefused(state.ref, name, "who registered it")
    for job, owner in sql.consumer_owners(conn, state.id, state.revision):
        if _same(state, name, owner, f"an owner of job `{job}`"):
            raise SelfApprovalRefused(state.ref, name, f"a registered owner of job `{job}`, which consumes its data")
    tie = _declared_interest(conn, state.terms, name)
    if tie:
        raise InterestRefused(state.ref, name, *tie)


def _independent(conn: psycopg.Connection, state: ContractState, name: str) -> bool:
    normal = _norm(name)
    if normal is None:  # an approval by a name with no normal form proves nobody independent
        return False
    try:
        _check_independent(conn, state, normal)
    except (SelfApprovalRefused, Conflict):
        return False
    return True


def _declared_interest(conn: psycopg.Connection, terms: ContractTerms, name: str) -> tuple[str, str] | None:
    """``(tie, party)`` for the first active tie of ``name`` to the provider or requester organisation.

    Organisations match by :func:`~lineage.contracts.governance.same_organisation`, each tie's
    key recomputed from the name it was recorded with (keys stored under older rules do not
    decide).  A party name with no normal form refuses (fail closed) rather than matching nothing.
    """
    from lineage.contracts.governance import active_ties, normalise_organisation, same_organisation

    ties = active_ties(conn, name)
    if not ties:
        return None
    parties = [(terms.provider, "the contract's provider")]
    if terms.requester_organization:
        parties.append((terms.requester_organization, "the contract's requester organisation"))
    for org, role in parties:
        try:
            key = normalise_organisation(org)
        except BadRequest:
            return f"a declared tie that cannot be compared with `{org}` (not a plain organisation name)", role
        for tie in ties:
            try:
                tied = normalise_organisation(tie.organisation_name)
            except BadRequest:
                tied = tie.organisation
            if same_organisation(tied, key):
                return f"a declared {tie.kind} tie to `{org}`", role
    return None


def _needs(actor: Principal, role: str, what: str) -> None:
    if not isinstance(actor, Principal):
        raise TypeError("the actor must be an authenticated Principal")
    # Authenticators hand over normalised names; one that did not (a name with invisible or
    # look-alike characters) would slip past every comparison below, so refuse it here too.
    if normalise_name(actor.name, "principal") != actor.name:
        raise BadRequest("principal", f"`{actor.name}` is not in normal form (NFKC, case-folded); authenticate again")
    if not actor.has(role):
        raise Forbidden(f"`{actor.name}` may not {what}: that needs the `{role}` role")


def _norm(name: str | None) -> str | None:
    """The normal form of a stored name; None for one that has none (it can equal no principal)."""
    if not name:
        return None
    try:
        return normalise_name(name)
    except BadRequest:
        return None


def _same(state: ContractState, principal_name: str, other: str | None, what: str) -> bool:
    """Whether a stored name (requester, registrant, owner) may name the principal ``principal_name``.

    Compared as one person (:func:`~lineage.auth.principal.same_person`); a stored name with no
    normal form is a :class:`~lineage.errors.Conflict`: nobody can be shown independent of it.
    """
    if not other:
        return False
    normal = _norm(other)
    if normal is None:
        raise Conflict(
            f"contract `{state.ref}` names {what} as `{other}`, which is not a plain name (invisible or look-alike "
            "characters), so no approver can be shown independent of it: register a revision with a plain name"
        )
    return same_person(principal_name, normal)
