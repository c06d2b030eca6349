"""The gate's decision, as a pure function over plain data.

:func:`evaluate` answers: may ``job`` read ``inputs`` for ``purpose``?  It is given, for each
input, its original sources (from lineage) and, for each source, the current state of every
contract that covers it (from the registry).  A source passes when at least one of its contracts
is approved, unexpired, permits the purpose (the hierarchy counts: a permission for
``essential`` covers ``essential.service``), does not prohibit it (in either direction of the
hierarchy: prohibiting ``train_ai_system`` blocks it and all its sub-uses; prohibiting a sub-use
blocks a request for the whole), and permits that purpose for every data category the contract
says the data holds.  Otherwise each failing contract contributes its reasons.

The decision is allowed only when every source of every input passes and every data validation
passed; it lists *every* reason, each naming the input dataset, the source, the contract
(``id@version``) and the clause.  No I/O happens here; ``service`` fetches the facts, and
:func:`blocked` builds the fail-closed decision used when they cannot be fetched.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lineage.contracts.taxonomy import covered_by_any, covers, overlaps

if TYPE_CHECKING:  # pragma: no cover
    from lineage.contracts.registry import ContractState


@dataclass(frozen=True)
class Reason:
    """One reason a run is blocked."""

    code: str  # no_inputs, no_contract, not_approved, revoked, expired, purpose_not_permitted,
    #            purpose_prohibited, category_not_permitted, expectation_failed, store_unavailable, gate_error
    message: str
    dataset: str | None = None  # the input, as dataset:NS:NAME
    source: str | None = None  # the original source, as dataset:NS:NAME
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
    #: input -> its original sources
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: source -> the contract (id@version) that let it through
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
                detail = ""
                if r.get("unexpected_count") is not None:
                    detail = f": {r['unexpected_count']} of {r.get('element_count')} rows unexpected, e.g. {r.get('sample')}"
                elif r.get("unexpected_columns") or r.get("missing_columns"):
                    detail = f": undeclared columns {r.get('unexpected_columns') or []}, missing columns {r.get('missing_columns') or []}"
                reasons.append(
                    Reason(
                        "expectation_failed",
                        f"suite `{v.suite}` failed `{r['type']}`{' on column `' + r['column'] + '`' if r.get('column') else ''}{detail}",
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

    def render(self) -> str:
        """The decision as text for a terminal, a log, or an Airflow failure."""
        head = "ALLOWED" if self.allowed else "BLOCKED"
        lines = [f"{head}: job `{self.job}` reading {len(self.inputs)} input(s) for purpose `{self.purpose}` (decision {self.decision_id})"]
        for inp in self.inputs:
            srcs = self.sources.get(inp, ())
            shown = ", ".join(f"{s} [{self.passed_by[s]}]" if s in self.passed_by else s for s in srcs) or "unknown"
            lines.append(f"  input {inp} <- sources: {shown}")
        for i, r in enumerate(self.reasons, 1):
            where = ", ".join(
                f"{k} {v}" for k, v in (("input", r.dataset), ("source", r.source), ("contract", r.contract), ("clause", r.clause)) if v
            )
            lines.append(f"  {i}. [{r.code}] {r.message}" + (f" ({where})" if where else ""))
        for v in self.validations:
            lines.append(f"  validation {v.suite} on {v.dataset}: {'passed' if v.success else 'FAILED'} ({v.seconds:.2f}s)")
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
            "passedBy": dict(self.passed_by),
            "contracts": dict(self.contracts),
            "validations": [v.as_dict() for v in self.validations],
            "decidedAt": self.decided_at.isoformat(),
        }


def contract_problems(state: "ContractState", purpose: str, today: dt.date) -> list[tuple[str, str, str]]:
    """Why ``state`` does not let its data be used for ``purpose``: ``(code, clause, message)``s."""
    t = state.terms
    out: list[tuple[str, str, str]] = []
    when = state.recorded_at.date().isoformat()
    if state.status == "proposed":
        out.append(("not_approved", "status", f"contract `{state.ref}` is proposed, not approved: a steward must run `lineage contracts approve {state.id} --as USER`"))
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
    sources: Mapping[str, Iterable[str]],
    contracts: Mapping[str, Sequence["ContractState"]],
    today: dt.date | None = None,
    decided_at: dt.datetime | None = None,
) -> Decision:
    """Decide from plain facts; see the module docstring.

    ``sources`` maps each input (``dataset:NS:NAME``) to its original sources (same form; an
    input nothing writes is its own source); ``contracts`` maps a source to the contract states
    covering it.
    """
    decided_at = decided_at or dt.datetime.now(dt.timezone.utc)
    today = today or decided_at.date()
    reasons: list[Reason] = []
    passed_by: dict[str, str] = {}
    consulted: dict[str, int] = {}
    srcs_by_input = {i: tuple(sorted(set(sources.get(i, ())) or {i})) for i in inputs}
    if not inputs:
        reasons.append(Reason("no_inputs", f"job `{job}` declared no inputs; the gate only lets through runs whose data it can trace"))
    verdicts: dict[str, list[Reason]] = {}
    for source in sorted({s for v in srcs_by_input.values() for s in v}):
        found = contracts.get(source, ())
        problems: list[Reason] = []
        if not found:
            problems.append(Reason("no_contract", f"source `{source}` has no contract: register one (`lineage contracts register FILE`) and have an independent steward approve it", source=source))
        for state in found:
            consulted[state.id] = state.version
            mine = contract_problems(state, purpose, today)
            if not mine:
                passed_by[source] = state.ref
                break
            problems += [Reason(code, msg, source=source, contract=state.ref, clause=clause) for code, clause, msg in mine]
        if source not in passed_by:
            verdicts[source] = problems
    for inp in inputs:
        for source in srcs_by_input[inp]:
            for r in verdicts.get(source, ()):
                reasons.append(replace(r, dataset=inp))
    return Decision(
        job=job,
        purpose=purpose,
        inputs=tuple(inputs),
        allowed=not reasons,
        reasons=tuple(reasons),
        sources=srcs_by_input,
        passed_by=passed_by,
        contracts=consulted,
        decided_at=decided_at,
    )


def blocked(job: str, purpose: str, inputs: Sequence[str], code: str, message: str) -> Decision:
    """The fail-closed decision: used when the facts cannot be fetched."""
    return Decision(job=job, purpose=purpose, inputs=tuple(inputs), allowed=False, reasons=(Reason(code, message),))
