"""What the graph explorer draws: the walk cut to a depth, fan-outs capped, every node annotated.

Pure functions over plain data (the walk's nodes and edges, and the facts
:mod:`lineage.store.dashboard` and the contract registry return); no I/O.

* **Depth** counts jobs, as :mod:`lineage.store.graph` does.  The walk is asked for one job
  further than shown, so each shown node knows whether anything lies beyond it
  (``frontier``): the page offers to expand exactly those.  An expanded node shows one more
  job beyond itself.
* **Caps.**  A node shows at most ``cap`` of its neighbours in the walk's direction (sorted by
  name, so the same request always shows the same ones); the rest become one *group* node
  ``more:<parent>`` labelled with how many are hidden, and asking for ``more=<parent>`` shows
  them all.  A node reached through some shown parent is shown.
* **Status** of a dataset, from the *governing* state of the contracts that cover it (what the
  gate obeys): ``revoked``, ``expired``, ``proposed`` (not yet in force) win over
  ``approved``, as deny wins in the gate; a dataset no contract covers is ``missing`` when it
  is an origin (nothing in the store writes it: the gate would block it) and ``derived``
  otherwise (its sources carry the contracts).  A dataset on an erasure manifest is
  ``erased`` whatever its contracts say (the route adds it, from the erasure tables).
* **Blocked.**  A job whose latest run carried a ``contractGate`` facet with ``allowed`` false
  is ``blocked``; every dataset a reason of that facet names as its ``source`` (or input, when
  no source is named) is ``blocking``: the page highlights both.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any, Iterable

DEFAULT_DEPTH = 2
DEFAULT_CAP = 25
MAX_NODES = 20_000

_DENY_ORDER = ("revoked", "expired", "proposed", "approved")


def _adjacency(edges: Iterable[dict], direction: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in edges:
        o, d = e["origin"], e["destination"]
        if direction == "downstream":
            out.setdefault(o, []).append(d)
        else:
            out.setdefault(d, []).append(o)
    return out


def distances(start: str, adj: dict[str, list[str]], kinds: dict[str, str]) -> dict[str, int]:
    """Jobs between ``start`` and each node reachable through ``adj`` (the start job counts 0)."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        cur = queue.popleft()
        for nxt in adj.get(cur, ()):
            d = dist[cur] + (1 if kinds.get(nxt) == "job" else 0)
            if nxt not in dist or d < dist[nxt]:
                dist[nxt] = d
                queue.append(nxt)
    return dist


def cut(
    start: str, nodes: list[dict], edges: list[dict], directions: list[str], depth: int,
    expanded: Iterable[str] = (), shown_all: Iterable[str] = (), cap: int = DEFAULT_CAP,
) -> dict[str, Any]:
    """The visible part of a walk answer (asked ``depth + 1`` deep): see the module docstring.

    Returns ``{"nodes": [node dicts with "frontier"], "groups": [...], "edges": [...], "hidden": N}``.
    """
    kinds = {n["id"]: n["type"] for n in nodes}
    by_id = {n["id"]: n for n in nodes}
    expanded, shown_all = set(expanded) & by_id.keys(), set(shown_all)
    within: set[str] = set()
    adj = {d: _adjacency(edges, d) for d in directions}
    for d in directions:
        within |= {n for n, k in distances(start, adj[d], kinds).items() if k <= depth}
        for x in expanded:
            within |= {n for n, k in distances(x, adj[d], kinds).items() if k <= 1}
    # Caps: breadth-first from the start (and expanded nodes) through the nodes within reach.
    visible: set[str] = set()
    hidden_of: dict[str, list[str]] = {}
    queue = deque([start, *sorted(expanded)])
    seen = set(queue)
    visible |= set(queue) & within | {start}
    while queue:
        cur = queue.popleft()
        kids = sorted({k for d in directions for k in adj[d].get(cur, ()) if k in within}, key=lambda k: (by_id[k]["name"], k))
        limit = len(kids) if cur in shown_all else cap
        for i, kid in enumerate(kids):
            if i < limit or kid in expanded:
                visible.add(kid)
                if kid not in seen:
                    seen.add(kid)
                    queue.append(kid)
            else:
                hidden_of.setdefault(cur, []).append(kid)
    groups = []
    for parent, kids in sorted(hidden_of.items()):
        still = [k for k in kids if k not in visible]
        if still:
            groups.append({"id": f"more:{parent}", "type": "group", "parent": parent, "count": len(still),
                           "namespace": "", "name": f"+{len(still)} more"})
    hidden = len(within - visible)
    shown = [dict(by_id[n]) for n in sorted(visible)]
    for n in shown:
        # Anything next to it in the walk's direction that is not shown and not merely capped?
        n["frontier"] = any(k not in within for d in directions for k in adj[d].get(n["id"], ()))
    out_edges = [{"source": e["origin"], "target": e["destination"]} for e in edges
                 if e["origin"] in visible and e["destination"] in visible]
    for g in groups:
        # The group hangs off its parent on the side the hidden nodes are.
        p = g["parent"]
        down = any(k in hidden_of[p] for k in adj.get("downstream", {}).get(p, ()))
        out_edges.append({"source": p, "target": g["id"]} if down or "upstream" not in directions else {"source": g["id"], "target": p})
    return {"nodes": shown, "groups": groups, "edges": out_edges, "hidden": hidden}


def contract_status(states: list[Any], origin: bool, today: dt.date) -> str:
    """One status for a dataset from the governing states of its contracts (see the module docstring)."""
    if not states:
        return "missing" if origin else "derived"
    seen = set()
    for s in states:
        status = s.status
        if status == "approved" and s.terms.expires and s.terms.expires < today:
            status = "expired"
        seen.add(status if status in _DENY_ORDER else "proposed")
    return next(s for s in _DENY_ORDER if s in seen)


def gate_verdict(found: dict | None) -> dict | None:
    """The gate's verdict from a gate run's event: ``{"facet": contractGate, "inputs": [...]}``.

    Returns ``{allowed, purpose, decisionId, decision, inputs, reasons, checks}`` where each
    reason is ``{code, message, dataset, source, contract, clause}``: taken from the
    ``sourceContract`` facet of each input (which carries them structured), else from the run
    facet's strings (``"[code] message"``); and each check is one of the data-quality
    assertions the gate ran on an input (``dataQualityAssertions``: ``{dataset, success,
    assertion, name, column, expected, actual, description}``).  None when there is no verdict.  Tolerant of any JSON shape: an
    event is producer input, so nothing here may raise on it.
    """
    if not isinstance(found, dict) or not isinstance(found.get("facet"), dict):
        return None
    facet = found["facet"]
    reasons: list[dict] = []
    checks: list[dict] = []
    decision_id = None
    for inp in _list(found.get("inputs")):
        if not isinstance(inp, dict):
            continue
        dataset = f"dataset:{_text(inp.get('namespace'))}:{_text(inp.get('name'))}"
        dq = _dict(_dict(inp.get("inputFacets")).get("dataQualityAssertions"))
        for a in _list(dq.get("assertions")):
            if isinstance(a, dict):
                checks.append({"dataset": dataset, "success": a.get("success") is True,
                               **{k: _text(a.get(k)) for k in ("assertion", "name", "column", "expected", "actual", "description")}})
        sc = _dict(inp.get("facets")).get("sourceContract")
        if not isinstance(sc, dict):
            continue
        decision_id = decision_id or _text(sc.get("decisionId"))
        for r in _list(sc.get("reasons")):
            if isinstance(r, dict):
                reasons.append({"code": _text(r.get("code")), "message": _text(r.get("message")),
                                "dataset": _text(r.get("dataset")) or dataset, "source": _text(r.get("source")),
                                "contract": _text(r.get("contract")), "clause": _text(r.get("clause"))})
    if not reasons:
        for text in _list(facet.get("reasons")):
            code, _, message = str(text).partition("] ")
            reasons.append({"code": code.lstrip("[") if message else None, "message": message or str(text),
                            "dataset": None, "source": None, "contract": None, "clause": None})
    return {"allowed": facet.get("allowed") is True, "purpose": _text(facet.get("purpose")), "decisionId": decision_id,
            "decision": _text(facet.get("decision")), "inputs": [str(x) for x in _list(facet.get("inputs"))], "reasons": reasons,
            "checks": checks}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def blocking_sources(gate: dict | None) -> dict[str, list[str]]:
    """Dataset id -> the reason codes of a blocking verdict (:func:`gate_verdict`) that name it."""
    out: dict[str, list[str]] = {}
    if not gate or gate.get("allowed"):
        return out
    for r in gate.get("reasons") or ():
        where = r.get("source") or r.get("dataset")
        if isinstance(where, str) and where:
            out.setdefault(where, []).append(str(r.get("code") or "blocked"))
    return out
