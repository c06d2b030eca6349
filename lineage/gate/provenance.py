"""Where an input's data came from, as the gate sees it: pure functions over an upstream graph.

:func:`upstream_of` turns the graph :func:`lineage.store.graph.upstream` returns (job and
dataset nodes, ``origin -> destination`` edges) into an :class:`Upstream`: every dataset on it
(the input included), and its *origins*, the datasets whose data has no recorded upstream.

A dataset is an origin when

* some job that writes it declared no inputs (its data enters the graph from nowhere the
  store knows, whatever else also writes it), or
* no dataset outside its strongly connected component feeds it.  For a dataset outside any
  cycle that simply means nothing writes it; for a closed cycle (a job that reads and writes
  the same dataset and nothing else, or ``A -> B -> A`` fed by nothing) it makes *every*
  dataset of the cycle an origin, so a self-loop cannot hide where data came from.

Job inputs are the union over every run the store recorded.  When the walk stops at its depth
limit, the datasets where it stopped have no writer in the graph and so count as origins: the
gate then asks more of them (their own contract), never less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Upstream:
    """One input's upstream: every dataset on it (itself included) and which are origins."""

    datasets: frozenset[str]
    origins: frozenset[str]

    @classmethod
    def of(cls, datasets: Iterable[str], origins: Iterable[str]) -> "Upstream":
        o = frozenset(origins)
        return cls(frozenset(datasets) | o, o)


def upstream_of(start: str, nodes: Iterable[Mapping], edges: Iterable[Mapping]) -> Upstream:
    """The :class:`Upstream` of dataset ``start`` from a graph's nodes (``id``, ``type``) and edges."""
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
    origins = set(from_nowhere)
    for component in _components(feeds):
        if not any(src not in component for d in component for src in feeds[d]):
            origins |= component
    return Upstream(frozenset(datasets), frozenset(origins))


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
