"""What a verification found: a list of problems, each naming a record or a block, and counts.

Shared by the database verifier (:mod:`lineage.audit.verify`) and the offline bundle verifier
(:mod:`lineage.audit.bundle`).  Problems are ordered by ledger position, so
:attr:`Report.first` is the first altered, deleted or inserted record in ledger order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Kinds of problem: a record whose current content does not hash to its sealed leaf; a
#: sealed record that is gone without an erasure naming it; a record in a ledgered table that
#: the ledger never saw; a block or chain link that does not add up; a checkpoint that does
#: not verify or does not match the ledger; a retention's archive missing, unreadable or not the
#: file its ledgered record names (lineage.audit.archive).
KINDS = ("altered", "deleted", "inserted", "block", "checkpoint", "retention")


@dataclass
class Problem:
    kind: str
    detail: str
    table: str | None = None
    key: dict[str, Any] | None = None
    seq: int | None = None          # ledger position of the entry concerned (None: not in the ledger)
    block: int | None = None

    def line(self) -> str:
        where = f"{self.table} {_key_text(self.key)}" if self.table else (f"block {self.block}" if self.block else "")
        return f"{self.kind}: {where}: {self.detail}" if where else f"{self.kind}: {self.detail}"


@dataclass
class Report:
    records: int = 0          # records re-hashed and matching their leaf
    entries: int = 0          # ledger entries read
    blocks: int = 0           # blocks whose root and link were checked
    checkpoints: int = 0      # checkpoints whose signature and head matched
    pending: int = 0          # records queued, not sealed yet (not a problem)
    erased: int = 0           # sealed records deleted by a recorded erasure
    hash_only: int = 0        # bundle entries exported without their record (erased or superseded)
    retained: int = 0         # sealed records archived and dropped by a recorded retention (lineage maintain retain)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def ordered(self) -> list[Problem]:
        """The problems in ledger order (records not in the ledger come after sealed ones)."""
        return sorted(self.problems, key=lambda p: (p.seq is None, p.seq or 0, p.block or 0))

    @property
    def first(self) -> Problem | None:
        return self.ordered()[0] if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "problems"}
        out["ok"] = self.ok
        out["first"] = asdict(self.first) if self.first else None
        out["problems"] = [asdict(p) for p in self.ordered()]
        return out

    def summary(self) -> str:
        counts = (f"{self.records} records re-hashed, {self.entries} entries, {self.blocks} blocks, "
                  f"{self.checkpoints} checkpoints verified; {self.erased} erased, {self.pending} pending")
        if self.hash_only:
            counts += f", {self.hash_only} hash-only"
        if self.retained:
            counts += f", {self.retained} retained"
        if self.ok:
            return "OK: " + counts
        return f"FAILED ({len(self.problems)} problem(s)); first: {self.first.line()}\n" + counts


def _key_text(key: dict[str, Any] | None) -> str:
    if not key:
        return ""
    return "(" + ", ".join(f"{k}={v}" for k, v in key.items()) + ")"
