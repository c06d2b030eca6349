"""Layered (Sugiyama) layout of a lineage graph, computed on the server and cached.

:func:`layout` takes node ids and ``(origin, destination)`` edges and returns ``{id: (x, y)}``:
layers run left to right in the edges' direction (sources on the left, what was built from
them on the right), so the page only draws.  python-igraph's ``layout_sugiyama`` does the
work: about 0.04 s for 1,000 nodes and 0.6 s for 10,000 on this project's machines, where
layered layouts in the browser took seconds or failed (see ``benchmarks/dashboard.py``).

The same graph asked for again (another viewer, the table view, a reload) is answered from
an in-process LRU cache keyed by a hash of its sorted nodes and edges: the answer depends only
on them, so a stale entry is impossible; the cache only bounds memory.  Pure apart from the
cache; no I/O.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Iterable

CACHE_SIZE = 64
_cache: OrderedDict[str, dict[str, tuple[float, float]]] = OrderedDict()
_lock = threading.Lock()
# igraph's Sugiyama spacing is one unit between layers and between neighbours in a layer;
# the page scales freely, so keep the units and only swap axes (layers left to right).
LAYER_GAP = 1.0


def _key(nodes: list[str], edges: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for n in nodes:
        h.update(n.encode("utf-8", "surrogatepass") + b"\x00")
    h.update(b"\x01")
    for o, d in edges:
        h.update(o.encode("utf-8", "surrogatepass") + b"\x00" + d.encode("utf-8", "surrogatepass") + b"\x00")
    return h.hexdigest()


def _compute(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    import igraph  # imported here: `lineage --help` and the API's other routes never pay for it

    index = {n: i for i, n in enumerate(nodes)}
    g = igraph.Graph(n=len(nodes), edges=[(index[o], index[d]) for o, d in edges if o in index and d in index], directed=True)
    # maxiter bounds the crossing-minimisation sweeps: the default (100) costs seconds at
    # 10,000 nodes for little visible gain.
    lay = g.layout_sugiyama(maxiter=20)
    coords = lay.coords[: len(nodes)]  # igraph appends dummy vertices for long edges; drop them
    return {n: (float(y) * LAYER_GAP, float(x)) for n, (x, y) in zip(nodes, coords)}


def layout(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """``{node: (x, y)}``: x is the layer (0 = sources), y the position within it."""
    ns = sorted(set(nodes))
    es = sorted(set(edges))
    if not ns:
        return {}
    key = _key(ns, es)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    result = _compute(ns, es)
    with _lock:
        _cache[key] = result
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def cache_info() -> int:
    """How many layouts are cached (for tests and the benchmark)."""
    with _lock:
        return len(_cache)
