"""The gate's decision, as a pure function over plain data.

:func:`evaluate` answers: may ``job`` read ``inputs`` for ``purpose``?  It is given, for each
input, its :class:`~lineage.gate.provenance.Upstream` (every dataset on its upstream graph, the
input included, and which of them are origins; ``None`` when the store has never seen the
input) and, for each dataset, the *governing* state of every contract covering it (the latest
approved version of each contract, unless revoked or expired since; see
:mod:`lineage.store.contracts`).  No I/O happens here; ``service`` fetches the facts.

The rules, in the order they are applied (every rule that fails adds its reasons; the run is
allowed only when none does):

0. **Purpose.**  A purpose that is not a data-use key of the Fides taxonomy is blocked
   (``unknown_purpose``): matching is by exact key and hierarchy, so a misspelt, re-cased,
   padded or invented key (``essential.service.train_ai_system``) would otherwise slip under a
   permission for its parent while no prohibition names it.
1. **Inputs.**  A job that declares no inputs is blocked (``no_inputs``): the gate only lets
   through runs whose data it can trace.
2. **Unknown provenance.**  An input the lineage store has never seen is blocked
   (``unknown_provenance``): nothing is known of where its data came from.  (A dataset the
   store knows but that nothing writes is not unknown: it is an origin, rule 5.)
3. **Every covered dataset upstream is checked**, not only the roots: for each input, every
   dataset on its upstream graph (the input itself included) that a contract covers.
4. **Deny wins.**  Each contract covering such a dataset that is not approved
   (``not_approved``), revoked (``revoked``), expired by status or by its ``expires`` date
   (``expired``), or prohibits the purpose or any purpose overlapping it in the Fides
   hierarchy (``purpose_prohibited``) blocks, whatever other contracts on that dataset permit.
5. **Permission.**  Each covered dataset also needs at least one covering contract that is
   approved, unexpired, permits the purpose (a permission for ``essential`` covers
   ``essential.service``) and permits it for every data category the contract says the data
   holds.  When none does, the shortfalls of each (``purpose_not_permitted``,
   ``category_not_permitted``) are the reasons; when one does, the others' shortfalls are not
   denials and do not block (a contract that merely does not list a purpose does not forbid it).
6. **Origins.**  Every origin (a dataset with no recorded upstream, including one written by a
   job that declared no inputs; see :mod:`lineage.gate.provenance`) must be covered by such a
   contract: an uncovered origin is blocked (``no_contract``).  Derived datasets no contract
   covers are not checked themselves: their origins and covered ancestors are.  (A dataset
   read before any writer of it was recorded stays an origin whatever writes it later.)
7. **Depth.**  Where the walk stopped at its depth limit while the store records more upstream,
   the run is blocked (``lineage_too_deep``): what lies beyond was not checked.
8. **Ambiguity.**  A dataset id on an input's upstream that names two datasets of the store
   (``dataset:x:y:z`` is ``x`` / ``y:z`` and ``x:y`` / ``z``) blocks (``ambiguous_dataset``): the
   gate cannot tell their lineage and contracts apart.

9. **Erasure.**  An input, or any dataset on its upstream, that is on an erasure manifest
   (compared under Unicode NFC; see :mod:`lineage.erasure.service`) blocks (``erased_source``):
   its source was erased, and nothing may be trained from it or from anything built from it,
   whatever contracts say.  Checked over the whole upstream walk, for inputs of unknown
   provenance too.

Data validation (``expectation_failed``) comes after, in ``service``, and only for runs these
rules allow; :func:`blocked` builds the fail-closed decision used when the facts cannot be
fetched (``store_unavailable``, ``gate_error``).  The decision lists *every* reason, each naming
the input (``dataset``), the dataset on its upstream where the problem was found (``source``),
the contract (``id@version``) and the clause.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Collection, Mapping, Sequence

from lineage.contracts.taxonomy import covered_by_any, covers, keys, overlaps
from lineage.times import iso

from lineage.gate.provenance import Upstream

if TYPE_CHECKING:  # pragma: no cover
    from lineage.contracts.registry import ContractState

#: Problems that block whatever other contracts on the same dataset permit.
DENIALS = frozenset({"not_approved", "revoked", "expired", "purpose_prohibited"})


@dataclass(frozen=True)
class Reason:
    """One reason a run is blocked."""

    code: str  # erased_source, unknown_purpose, no_inputs, unknown_provenance, no_contract, lineage_too_deep, ambiguous_dataset, not_approved, revoked, expired, purpose_prohibited,
    #            purpose_not_permitted, category_not_permitted, expectation_failed, store_unavailable, gate_error, lineage_pending,
    #            lineage_refused
    message: str
    dataset: str | None = None  # the input, as dataset:NS:NAME
    source: str | None = None  # where on the input's upstream it was found (an origin or a covered dataset)
    contract: str | None = None  # id@version
    clause: str | None = None  # where in the contract

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Validation:
    """The outcome of one GX suite on one input's data (see ``runner``)."""

    dataset: str
    suite: str
    contract: str | None
    success: bool
    results: tuple[dict[str, Any], ...]  # per expectation: type, column, clause, success, counts, sample
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "results": list(self.results)}


@dataclass(frozen=True)
class Decision:
    job: str
    purpose: str
    inputs: tuple[str, ...]
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    #: input -> its origins (empty for an input of unknown provenance)
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: input -> every dataset on its upstream that was checked: its origins and covered datasets
    checked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: checked dataset -> the contract (id@version) that permitted it (absent if none did, or a denial blocked it)
    passed_by: Mapping[str, str] = field(default_factory=dict)
    #: every contract consulted: id -> version
    contracts: Mapping[str, int] = field(default_factory=dict)
    validations: tuple[Validation, ...] = ()
    decided_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    decision_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def with_validations(self, validations: Sequence[Validation]) -> "Decision":
        """Add data validations; any failure blocks and becomes a reason per failed expectation."""
        reasons = list(self.reasons)
        for v in validations:
            for r in v.results:
                if r["success"]:
                    continue
                detail = _failure_detail(r)
                reasons.append(
                    Reason(
                        "expectation_failed",
                        f"{r.get('clause') or r['type']}: {r.get('check') or r['type']} failed"
                        f"{' on column `' + r['column'] + '`' if r.get('column') else ''} (suite `{v.suite}`, `{r['type']}`){detail}",
                        dataset=v.dataset,
                        contract=v.contract,
                        clause=r.get("clause"),
                    )
                )
        return replace(
            self,
            validations=self.validations + tuple(validations),
            reasons=tuple(reasons),
            allowed=self.allowed and all(v.success for v in validations),
        )

    @property
    def unvalidated(self) -> tuple[str, ...]:
        """Inputs on which no data-quality suite ran (no data given, none reported, or nothing to
        check): for these the decision rests on contracts and lineage alone."""
        seen = {v.dataset for v in self.validations}
        return tuple(i for i in self.inputs if i not in seen)

    def render(self) -> str:
        """The decision as text for a terminal, a log, or an Airflow failure."""
        head = "ALLOWED" if self.allowed else "BLOCKED"
        lines = [f"{head}: job `{self.job}` reading {len(self.inputs)} input(s) for purpose `{self.purpose}` (decision {self.decision_id})"]
        def shown(ids: Sequence[str]) -> str:
            return ", ".join(f"{s} [{self.passed_by[s]}]" if s in self.passed_by else s for s in ids)

        for inp in self.inputs:
            if inp not in self.sources:
                lines.append(f"  input {inp} <- origins: unknown")
                continue
            srcs = self.sources[inp]
            lines.append(f"  input {inp} <- origins: {shown(srcs)}")
            also = [d for d in self.checked.get(inp, ()) if d not in srcs]
            if also:
                lines.append(f"    also checked upstream: {shown(also)}")
        for i, r in enumerate(self.reasons, 1):
            where = ", ".join(
                f"{k} {v}" for k, v in (("input", r.dataset), ("source", r.source), ("contract", r.contract), ("clause", r.clause)) if v
            )
            lines.append(f"  {i}. [{r.code}] {r.message}" + (f" ({where})" if where else ""))
        for v in self.validations:
            lines.append(f"  validation {v.suite} on {v.dataset}: {'passed' if v.success else 'FAILED'} ({v.seconds:.2f}s)")
        if self.allowed and self.unvalidated:
            lines.append(f"  no data validated on {', '.join(self.unvalidated)}: no suite ran, the decision rests on "
                         "contracts and lineage alone")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisionId": self.decision_id,
            "job": self.job,
            "purpose": self.purpose,
            "inputs": list(self.inputs),
            "allowed": self.allowed,
            "reasons": [r.as_dict() for r in self.reasons],
            "sources": {k: list(v) for k, v in self.sources.items()},
            "checked": {k: list(v) for k, v in self.checked.items()},
            "passedBy": dict(self.passed_by),
            "contracts": dict(self.contracts),
            "validations": [v.as_dict() for v in self.validations],
            "decidedAt": iso(self.decided_at),
        }


def _failure_detail(r: Mapping[str, Any]) -> str:
    """Counts, the ODCS threshold, a few sample values (none where the contract hides them)."""
    parts = []
    if r.get("error"):
        parts.append(f"could not be checked: {r['error']}")
    if r.get("unexpected_columns") or r.get("missing_columns"):
        parts.append(f"undeclared columns {r.get('unexpected_columns') or []}, missing columns {r.get('missing_columns') or []}")
    elif r.get("threshold"):
        parts.append(f"observed {r.get('observed')}, the contract requires {r['threshold']}")
    elif r.get("observed") is not None and r.get("unexpected_count") is None:
        parts.append(f"observed {r['observed']}")
    if r.get("unexpected_count") is not None and not r.get("error"):
        of = f" of {r['element_count']} rows" if r.get("element_count") is not None else ""
        parts.append(f"{r['unexpected_count']}{of} unexpected")
        if r.get("sample"):
            parts.append(f"e.g. {r['sample']}")
        elif r["unexpected_count"] and r.get("hidden"):
            parts.append("values not shown (the contract's data categories are sensitive)")
    return (": " + "; ".join(parts)) if parts else ""


def contract_problems(state: "ContractState", purpose: str, today: dt.date) -> list[tuple[str, str, str]]:
    """Why ``state`` does not let its data be used for ``purpose``: ``(code, clause, message)``s."""
    t = state.terms
    out: list[tuple[str, str, str]] = []
    when = state.recorded_at.date().isoformat()
    if state.status == "proposed":
        if getattr(state, "action", None) == "endorse":  # the first of the two approvals special categories need
            out.append(("not_approved", "status", f"contract `{state.ref}` holds special categories of data and has one steward's approval ({state.actor}) of the two it needs: one more independent steward must approve it (`lineage contracts approve {state.id}`)"))
        else:
            out.append(("not_approved", "status", f"contract `{state.ref}` is proposed, not approved: an independent steward must approve it (`lineage contracts approve {state.id}`)"))
    elif state.status == "revoked":
        out.append(("revoked", "status", f"contract `{state.ref}` was revoked ({when}, by {state.actor}: {state.reason}): register a new revision or remove this source from the training inputs"))
    elif state.status == "expired" or (t.expires and t.expires < today):
        out.append(("expired", "customProperties[expires]", f"contract `{state.ref}` expired on {t.expires}: register a revision with a new expiry date"))
    elif state.status != "approved":
        out.append(("not_approved", "status", f"contract `{state.ref}` has status `{state.status}`"))
    for key in t.prohibited:
        if overlaps(key, purpose):
            out.append(("purpose_prohibited", f"customProperties[prohibitedPurposes].{key}", f"contract `{state.ref}` prohibits `{key}`, which covers purpose `{purpose}`"))
    permissions = [p for p in t.permitted if covers(p.purpose, purpose)]
    if not permissions:
        allowed = ", ".join(f"`{p.purpose}`" for p in t.permitted)
        out.append(("purpose_not_permitted", "customProperties[permittedPurposes]", f"contract `{state.ref}` does not permit `{purpose}` (it permits {allowed})"))
    else:
        if any(p.categories is None for p in permissions):
            granted: tuple[str, ...] = t.data_categories
        else:
            granted = tuple(c for p in permissions for c in (p.categories or ()))
        for cat in t.data_categories:
            if covered_by_any(cat, granted) is None:
                out.append((
                    "category_not_permitted",
                    f"customProperties[permittedPurposes].{permissions[0].purpose}.dataCategories",
                    f"contract `{state.ref}` holds `{cat}` but does not permit it for `{purpose}`",
                ))
    return out


def evaluate(
    *,
    job: str,
    purpose: str,
    inputs: Sequence[str],
    upstream: Mapping[str, Upstream | None],
    contracts: Mapping[str, Sequence["ContractState"]],
    today: dt.date | None = None,
    decided_at: dt.datetime | None = None,
    depth: int = 100,
    ambiguous: Collection[str] = (),
    erased: Mapping[str, str] | None = None,
) -> Decision:
    """Decide from plain facts by the rules in the module docstring.

    ``upstream`` maps each input (``dataset:NS:NAME``) to its :class:`Upstream`; an input
    missing from it, or mapped to ``None``, is of unknown provenance.  ``contracts`` maps a
    dataset (same form) to the governing states of the contracts covering it.  ``erased`` maps
    each dataset on an erasure manifest (same form) to the erasure that lists it.
    """
    decided_at = decided_at or dt.datetime.now(dt.timezone.utc)
    today = today or decided_at.date()
    reasons: list[Reason] = []
    passed_by: dict[str, str] = {}
    consulted: dict[str, int] = {}
    origins: dict[str, tuple[str, ...]] = {}
    checked: dict[str, tuple[str, ...]] = {}
    verdicts: dict[str, list[Reason]] = {}
    if purpose not in keys("data_use"):
        reasons.append(Reason(
            "unknown_purpose",
            f"purpose `{purpose}` is not a Fides data use; name the run's purpose by its taxonomy key, e.g. `train_ai_system`",
        ))
        return Decision(job=job, purpose=purpose, inputs=tuple(inputs), allowed=False, reasons=tuple(reasons), decided_at=decided_at)
    if not inputs:
        reasons.append(Reason("no_inputs", f"job `{job}` declared no inputs; the gate only lets through runs whose data it can trace"))
    erased = erased or {}
    for inp in inputs:
        up = upstream.get(inp)
        for ds in sorted(({inp} | (up.datasets if up is not None else frozenset())) & set(erased)):
            reasons.append(Reason(
                "erased_source",
                f"`{ds}` is on {erased[ds]}: its source was erased, so nothing may be trained from it or from anything "
                "built from it; remove it from the job's inputs",
                dataset=inp, source=ds,
            ))
        if up is None:
            reasons.append(Reason(
                "unknown_provenance",
                f"input `{inp}` is unknown to the lineage store: nothing records where its data came from; "
                "run the job that produces it with lineage enabled (or ingest its events) before training on it",
                dataset=inp, source=inp,
            ))
            continue
        origins[inp] = tuple(sorted(up.origins))
        checked[inp] = tuple(sorted(d for d in up.datasets | {inp} if d in up.origins or contracts.get(d)))
        for ds in checked[inp]:
            if ds not in verdicts:
                verdicts[ds] = _check(ds, contracts.get(ds, ()), purpose, today, passed_by, consulted)
            reasons += [replace(r, dataset=inp) for r in verdicts[ds]]
        for ds in sorted((up.datasets | {inp}) & set(ambiguous)):
            reasons.append(Reason(
                "ambiguous_dataset",
                f"`{ds}` names more than one dataset of the lineage store (a colon in a namespace or name); "
                "the gate cannot tell their lineage and contracts apart, so the run is blocked",
                dataset=inp, source=ds,
            ))
        for ds in sorted(up.truncated):
            reasons.append(Reason(
                "lineage_too_deep",
                f"the lineage above `{ds}` is more than {depth} jobs deep from input `{inp}` and was not followed; "
                "the gate cannot check what it has not seen, so the run is blocked",
                dataset=inp, source=ds,
            ))
    return Decision(
        job=job,
        purpose=purpose,
        inputs=tuple(inputs),
        allowed=not reasons,
        reasons=tuple(reasons),
        sources=origins,
        checked=checked,
        passed_by=passed_by,
        contracts=consulted,
        decided_at=decided_at,
    )


def _check(
    ds: str, states: Sequence["ContractState"], purpose: str, today: dt.date, passed_by: dict[str, str], consulted: dict[str, int]
) -> list[Reason]:
    """Rules 4-6 for one dataset: its reasons (without the input); records who permitted it."""
    if not states:
        return [Reason(
            "no_contract",
            f"origin `{ds}` has no contract: nothing upstream of its data is recorded, so an approved contract permitting the "
            "purpose must cover it; register one (`lineage contracts register FILE`) and have an independent steward approve it",
            source=ds,
        )]
    denials: list[Reason] = []
    shortfalls: list[Reason] = []
    permitted_by: str | None = None
    for state in sorted(states, key=lambda s: (s.id, s.version)):
        consulted[state.id] = state.version
        problems = contract_problems(state, purpose, today)
        if not problems and permitted_by is None:
            permitted_by = state.ref
        for code, clause, msg in problems:
            reason = Reason(code, msg, source=ds, contract=state.ref, clause=clause)
            (denials if code in DENIALS else shortfalls).append(reason)
    if permitted_by and not denials:
        passed_by[ds] = permitted_by
    return denials + ([] if permitted_by else shortfalls)


def blocked(job: str, purpose: str, inputs: Sequence[str], code: str, message: str) -> Decision:
    """The fail-closed decision: used when the facts cannot be fetched."""
    return Decision(job=job, purpose=purpose, inputs=tuple(inputs), allowed=False, reasons=(Reason(code, message),))
