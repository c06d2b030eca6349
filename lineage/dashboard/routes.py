"""The dashboard's JSON routes (``/api/v1/dashboard/...``), read-only, for every reading role.

They answer what the pages need in one request each, on top of the public API the pages also
call (Marquez reads, contracts, the decision log):

    ``GET /api/v1/dashboard/graph?nodeId=&direction=&depth=&asOf=&expand=&more=&cap=``
        the graph explorer's answer: visible nodes with server-computed layered positions
        (``x`` = layer, ``y`` = place in it), kind, contract status, data categories (and which
        are special), run state, ``blocked``/``blocking`` marks, ``frontier``; ``erasure``
        (the manifest's id; status ``erased``) on each dataset an erasure manifest names; "show
        more" group nodes; edges.  See :mod:`lineage.dashboard.view` for the rules.  Answers are
        cached by request and store change stamp (:mod:`lineage.dashboard.cache`).
    ``GET /api/v1/dashboard/dataset?nodeId=``
        a dataset's covering contracts (governing state, terms, full history) and the runs that
        read or wrote it, with any gate verdict.
    ``GET /api/v1/dashboard/runs/{id}``
        a run's job, its event timeline and its ``contractGate`` facet.
    ``GET /api/v1/dashboard/search?q=``
        datasets and jobs by name across namespaces.

Authorisation is the API's own (:func:`lineage.api.security.require` with ``READ``): the same
bearer token or trusted-proxy identity, nothing weaker.  No route writes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from lineage.api.deps import AsOfParam, NodeIdParam, Text, utf8_query
from lineage.api.security import READ, require
from lineage.dashboard import view
from lineage.dashboard.layout import layout
from lineage.errors import BadRequest
from lineage.events import parse_node_id
from lineage.store import dashboard as queries

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"], dependencies=[Depends(require(*READ)), Depends(utf8_query)])

MAX_EXPAND = 50
NodeList = Annotated[list[Text], Query(max_length=MAX_EXPAND, description="Node ids (repeat the parameter).")]


def _walks(conn, start, directions: list[str], depth: int, as_of) -> tuple[list[dict], list[dict]]:
    from lineage.store import graph

    nodes: dict[str, dict] = {}
    edges: set[tuple[str, str]] = set()
    for d in directions:
        g = graph.walk(conn, start, d, depth, as_of)  # type: ignore[arg-type]
        for n in g.nodes:
            nodes.setdefault(n["id"], n)
        edges |= {(e["origin"], e["destination"]) for e in g.edges}
    return list(nodes.values()), [{"origin": o, "destination": d} for o, d in sorted(edges)]


@router.get("/graph", summary="The graph explorer's answer: a capped, annotated, laid-out lineage graph",
            response_class=Response, responses={200: {"content": {"application/json": {}}}})
def get_graph(
    request: Request,
    nodeId: NodeIdParam,
    direction: Annotated[Literal["upstream", "downstream", "both"], Query(description="Which way to walk.")] = "upstream",
    depth: Annotated[int, Query(ge=0, le=50, description="Jobs away to show.")] = view.DEFAULT_DEPTH,
    asOf: AsOfParam = None,
    expand: NodeList = [],  # noqa: B006 - FastAPI copies defaults
    more: NodeList = [],  # noqa: B006
    cap: Annotated[int, Query(ge=1, le=view.MAX_NODES, description="Neighbours shown per node before a \"show more\" group.")] = view.DEFAULT_CAP,
) -> Response:
    from lineage.contracts.registry import contracts_for_datasets, special_categories_of
    from lineage.store.graph import io_marks

    start = parse_node_id(nodeId)
    directions = ["upstream", "downstream"] if direction == "both" else [direction]
    today = dt.datetime.now(dt.timezone.utc).date()
    # The answer depends on the request, the store and the day (contracts expire): keyed by all three.
    cache_key = (str(start), direction, depth, asOf.isoformat() if asOf else None, tuple(sorted(set(expand))),
           tuple(sorted(set(more))), cap, today.isoformat())
    for i, x in enumerate(expand):
        parse_node_id(x, f"expand[{i}]")
    settings = request.app.state.settings
    with request.app.state.db.connection() as conn:
        stamp = queries.change_stamp(conn)
        # One cache per application (per store): stamps are only comparable within one server.
        answers = request.app.state.dashboard_answers
        cached = answers.get(cache_key, stamp)
        if cached is not None:
            return Response(cached, media_type="application/json", headers={"X-Lineage-Cache": "hit"})
        nodes, edges = _walks(conn, start, directions, depth + 1, asOf)
        known = {n["id"] for n in nodes}
        for x in expand:
            if x in known:  # an id outside the answer expands nothing (and is not an error)
                more_nodes, more_edges = _walks(conn, parse_node_id(x), directions, 2, asOf)
                nodes += [n for n in more_nodes if n["id"] not in known]
                known |= {n["id"] for n in more_nodes}
                edges += more_edges
        edges = [{"origin": o, "destination": d} for o, d in sorted({(e["origin"], e["destination"]) for e in edges})]
        shown = view.cut(str(start), nodes, edges, directions, depth, expand, more, cap)
        if len(shown["nodes"]) > view.MAX_NODES:
            raise BadRequest("cap", f"the answer has {len(shown['nodes'])} nodes, more than {view.MAX_NODES}: lower `depth` or `cap`")
        datasets = [(n["namespace"], n["name"]) for n in shown["nodes"] if n["type"] == "dataset"]
        jobs = [(n["namespace"], n["name"]) for n in shown["nodes"] if n["type"] == "job"]
        contracts = contracts_for_datasets(conn, datasets)
        # Only a dataset nothing in the answer writes can be an origin: ask the store about those alone.
        written = {e["target"] for e in shown["edges"] if e["source"].startswith("job:")}
        marks = io_marks(conn, [d for n, d in zip((n for n in shown["nodes"] if n["type"] == "dataset"), datasets) if n["id"] not in written])
        erased = queries.erased_as_of(conn, datasets, asOf)
        states = queries.job_states(conn, jobs)
    for s in states.values():
        s["gate"] = view.gate_verdict(s["gate"])
    blocking: dict[str, list[str]] = {}
    for s in states.values():
        for ds, codes in view.blocking_sources(s["gate"]).items():
            blocking.setdefault(ds, []).extend(codes)
    special_extra = settings.special_categories
    for n in shown["nodes"]:
        key = (n["namespace"], n["name"])
        if n["type"] == "dataset":
            covering = contracts.get(key, [])
            origin = n["id"] not in written and (key not in marks or marks[key][1] is None)  # nothing in the store writes it
            n["status"] = view.contract_status(covering, origin, today)
            n["contracts"] = [{"id": c.id, "version": c.version, "status": c.status} for c in covering]
            cats = sorted({cat for c in covering for cat in c.terms.data_categories})
            n["categories"] = cats
            n["sensitive"] = sorted({cat for c in covering for cat in special_categories_of(c.terms, special_extra)})
            if key in erased:  # on an erasure manifest (recorded by asOf): erased, whatever its contracts say
                n["status"], n["erasure"] = "erased", erased[key]
            if n["id"] in blocking:
                n["blocking"] = sorted(set(blocking[n["id"]]))
        else:
            s = states.get(key, {})
            n["state"] = s.get("state")
            n["runId"] = s.get("runId")
            gate = s.get("gate")
            n["blocked"] = gate is not None and not gate["allowed"]
    positions = layout([n["id"] for n in shown["nodes"]] + [g["id"] for g in shown["groups"]],
                       [(e["source"], e["target"]) for e in shown["edges"]])
    for n in shown["nodes"] + shown["groups"]:
        n["x"], n["y"] = positions[n["id"]]
    body = {
        "start": str(start), "direction": direction, "depth": depth, "asOf": asOf.isoformat() if asOf else None,
        "nodes": shown["nodes"], "groups": shown["groups"], "edges": shown["edges"], "hidden": shown["hidden"],
    }
    # Plain JSON types only: encoded directly (FastAPI's generic encoder costs about a second at 10,000 nodes).
    encoded = msgspec.json.encode(body)
    answers.put(cache_key, stamp, encoded)
    return Response(encoded, media_type="application/json", headers={"X-Lineage-Cache": "miss"})


@router.get("/dataset", summary="A dataset's covering contracts (with history) and the runs that read or wrote it")
def get_dataset(request: Request, nodeId: NodeIdParam) -> dict:
    from lineage.contracts import registry
    from lineage.store import reads

    node = parse_node_id(nodeId, kind="dataset")
    with request.app.state.db.connection() as conn:
        dataset = reads.get_dataset(conn, node.namespace, node.name)
        covering = registry.contracts_for_datasets(conn, [(node.namespace, node.name)]).get((node.namespace, node.name), [])
        full = [registry.get(conn, c.id).as_dict(full=True) for c in covering]
        runs = queries.dataset_runs(conn, node.namespace, node.name)
    for r in runs:
        r["gate"] = view.gate_verdict(r["gate"])
    governing = {c.id: c.as_dict() for c in covering}
    for f in full:
        f.pop("document", None)
        f["governing"] = governing[f["id"]]
    return {"dataset": dataset, "contracts": full, "runs": runs}


RunId = Annotated[uuid.UUID, Path(alias="id", description="The run's UUID.")]


@router.get("/runs/{id}", summary="A run's job, event timeline and gate facet")
def get_run(request: Request, run_id: RunId) -> dict:
    with request.app.state.db.connection() as conn:
        found = queries.run_timeline(conn, run_id)
    found["gate"] = view.gate_verdict(found["gate"])
    return found


@router.get("/search", summary="Datasets and jobs by name, across namespaces")
def search(
    request: Request,
    q: Annotated[Text, Query(min_length=1, max_length=200, description="Part of a name or namespace.")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    with request.app.state.db.connection() as conn:
        return {"results": queries.search(conn, q, limit)}
