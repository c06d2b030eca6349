"""Where an input's data came from, as the gate sees it: pure functions over an upstream graph.

:func:`upstream_of` turns the graph :func:`lineage.store.graph.upstream` returns (job and
dataset nodes, ``origin -> destination`` edges) into an :class:`Upstream`: every dataset on it
(the input included), and its *origins*, the datasets whose data has no recorded upstream.

A dataset is an origin when

* some job that writes it declared no inputs (its data enters the graph from nowhere the
  store knows, whatever else also writes it), or
* the store recorded a job reading it *before* it recorded any job writing it (by the store's
  own ``recorded_at``, which a producer cannot set), or a job that both reads and writes it
  reading it no later than the first write: data was in use before any recorded producer, and
  a writer recorded later (or the job appending to it) does not explain that data.  So once a dataset has
  been read as a source, no event posted afterwards (``x:launder``: ``clean -> it``) can make
  it a derived dataset that escapes rule 6 of :mod:`lineage.gate.decision`; or
* no dataset outside its strongly connected component feeds it.  For a dataset outside any
  cycle that simply means nothing writes it; for a closed cycle (a job that reads and writes
  the same dataset and nothing else, or ``A -> B -> A`` fed by nothing) it makes *every*
  dataset of the cycle an origin, so a self-loop cannot hide where data came from.

Job inputs are the union over every run the store recorded.  A dataset where the walk stopped
at its depth limit (nothing writes it in the graph, but the store records a writer) is
*truncated* (and an origin only by the rules above): its upstream was not seen, so the gate blocks on it
(``lineage_too_deep``) rather than take it for a source and miss what lies beyond.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Upstream:
    """One input's upstream: every dataset on it (itself included), which are origins, and
    where the walk was cut short by its depth limit."""

    datasets: frozenset[str]
    origins: frozenset[str]
    truncated: frozenset[str] = frozenset()

    @classmethod
    def of(cls, datasets: Iterable[str], origins: Iterable[str], truncated: Iterable[str] = ()) -> "Upstream":
        o, t = frozenset(origins), frozenset(truncated)
        return cls(frozenset(datasets) | o | t, o, t)


#: dataset id -> (first recorded read, first recorded write, first recorded read by a job that
#: also writes it), as ``lineage.store.graph.io_marks`` returns; the third may be left out
Marks = Mapping[str, "tuple[datetime | None, ...]"]


def upstream_of(start: str, nodes: Iterable[Mapping], edges: Iterable[Mapping], marks: Marks | None = None) -> Upstream:
    """The :class:`Upstream` of dataset ``start`` from a graph's nodes (``id``, ``type``) and edges.

    ``marks`` gives, per dataset, when the store first recorded a read and a write of it
    anywhere; without it (pure tests) no dataset is read-before-written or truncated."""
    datasets = {n["id"] for n in nodes if n["type"] == "dataset"} | {start}
    jobs = {n["id"] for n in nodes if n["type"] == "job"}
    reads: dict[str, set[str]] = {j: set() for j in jobs}
    writes: dict[str, set[str]] = {j: set() for j in jobs}
    for e in edges:
        o, d = e["origin"], e["destination"]
        if d in reads and o in datasets:
            reads[d].add(o)
        elif o in writes and d in datasets:
            writes[o].add(d)
    # dataset -> the datasets it is made from (one step up, through any job that writes it)
    feeds: dict[str, set[str]] = {d: set() for d in datasets}
    from_nowhere: set[str] = set()
    for j in jobs:
        for out in writes[j]:
            feeds[out] |= reads[j]
            if not reads[j]:
                from_nowhere.add(out)
    marks = marks or {}
    written_here = {out for j in jobs for out in writes[j]}
    truncated = {d for d in datasets if d not in written_here and (marks.get(d) or (None, None))[1] is not None}
    read_first = {d for d in datasets if _read_before_written(marks.get(d))}
    closed: set[str] = set()
    for component in _components(feeds):
        if not any(src not in component for d in component for src in feeds[d]):
            closed |= component
    origins = from_nowhere | read_first | (closed - truncated)
    # A truncated dataset stays truncated even when it is also an origin (read before written):
    # covered datasets beyond it would be checked too, had the walk reached them.
    return Upstream(frozenset(datasets), frozenset(origins), frozenset(truncated))


def _read_before_written(mark: "tuple[datetime | None, ...] | None") -> bool:
    if mark is None or mark[1] is None:
        return False
    read, written, self_read = (tuple(mark) + (None,))[:3]
    # Ties (one transaction) count as derived for another job's read, as prior content for a
    # job's read of what it writes itself.
    return (read is not None and read < written) or (self_read is not None and self_read <= written)


def _components(feeds: Mapping[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of the graph ``d -> feeds[d]`` (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in sorted(feeds):
        if root in index:
            continue
        work = [(root, iter(sorted(feeds[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(feeds[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                out.append(component)
    return out
