"""OpenLineage ingest (``POST /api/v1/lineage``, ``/batch``) and lineage queries.

Ingest answers as Marquez does (201, empty body) so the OpenLineage HTTP transport and
Airflow's provider work unchanged.  A rejected event is a 400 whose body names each field
at fault; nothing of it is stored.  The batch endpoint stores the valid events in one
transaction and reports each rejected one by index: one bad event (even one whose bytes are
not JSON) never fails the batch.  Conflicts with concurrent writers are retried inside the
server (``Database.run``); no input answers a 500.
"""

from __future__ import annotations

import asyncio
import re

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lineage.api import models
from lineage.api.deps import AsOfParam, DepthParam, NodeIdParam, read_body, utf8_query
from lineage import metrics
from lineage.api.security import EMIT, READ, ScopeProblem, check_scope, require, scope_problem
from lineage.auth import Principal
from lineage.errors import FieldProblem, InvalidEvent, PayloadTooLarge
from lineage.events import parse_node_id, parse_raw
from lineage.events.model import ParsedEvent
from lineage.store import graph, marquez_reads
from lineage.store.batch import ingest_batch

router = APIRouter(prefix="/api/v1", tags=["lineage"])


@router.post("/lineage", status_code=201, summary="Ingest one OpenLineage event")
async def post_event(request: Request, principal: Principal = Depends(require(*EMIT))) -> Response:
    event = parse_raw(await read_body(request), datasets=False)  # stored raw, derived later
    check_scope(principal, event.kind, event.job_namespace)
    # Acknowledged once the raw event is committed (shared with concurrent requests: group
    # commit); its graph is derived after (lineage.store.derive), and reads wait for it.
    await asyncio.wrap_future(request.app.state.committer.submit(event))
    metrics.events_accepted.labels("single").inc()
    return Response(status_code=201)


_split_array = msgspec.json.Decoder(list[msgspec.Raw])
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


def _split_tolerant(body: bytes) -> list[bytes] | None:
    """Split a JSON array at its top-level commas without decoding the items, so an item that
    msgspec cannot skip (bad escapes, nesting past its recursion limit) is still one item,
    to be rejected alone.  None if the brackets do not close into one array."""
    start = body.find(b"[")
    items: list[bytes] = []
    depth, item_start = 0, start + 1
    for m in _TOKENS.finditer(body, start):
        c = m.group()[:1]
        if c in (b"[", b"{"):
            depth += 1
        elif c in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                last = body[item_start:m.start()]
                if last.strip() or items:
                    items.append(last)
                return items if not body[m.end():].strip() else None
        elif c == b"," and depth == 1:
            items.append(body[item_start:m.start()])
            item_start = m.end()
    return None


def split_batch(body: bytes, content_type: str) -> list[bytes]:
    """Split a JSON array or NDJSON body into each event's raw JSON, without decoding the events.

    Each event is decoded and validated on its own later, so a bad one is rejected by its
    index (for NDJSON, its place among the non-blank lines: blank lines are skipped, not counted)
    and the rest are stored: a line that is not JSON at all,
    even the first, is one rejected item.  Only a JSON array whose brackets do not balance
    is refused whole (its items cannot be told apart).
    """
    if body[:3] == _BOM:
        body = body[3:]
    stripped = body.lstrip()
    if stripped.startswith(b"[") and "ndjson" not in content_type:
        try:
            return [bytes(item) for item in _split_array.decode(body)]
        except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError, ValueError):
            items = _split_tolerant(body)
            if items is None:
                raise InvalidEvent([FieldProblem("$", "not a valid JSON array of events (brackets do not balance)")]) from None
            return items
    return [line for line in body.splitlines() if line.strip()]


_BOM = b"\xef\xbb\xbf"


def _store_batch(request: Request, items: list[bytes], principal: Principal):
    admit = None
    if principal.namespaces is not None:
        def admit(ev: ParsedEvent) -> FieldProblem | None:
            problem = scope_problem(principal, ev.kind, ev.job_namespace)
            return ScopeProblem("$.job.namespace", problem) if problem else None
    return request.app.state.db.run(lambda conn: ingest_batch(conn, items, admit=admit, defer=True))


@router.post("/lineage/batch", summary="Ingest a JSON array (or NDJSON) of OpenLineage events")
async def post_batch(request: Request, principal: Principal = Depends(require(*EMIT))) -> JSONResponse:
    body = await read_body(request)
    items = split_batch(body, request.headers.get("content-type", ""))
    limit = request.app.state.settings.max_batch_events
    if len(items) > limit:
        raise PayloadTooLarge(f"batch of {len(items)} events exceeds the limit of {limit} (LINEAGE_MAX_BATCH_EVENTS); split it")
    result, bad = await run_in_threadpool(_store_batch, request, items, principal)
    metrics.batch_ingested(result.stored + result.duplicates, bad)
    return JSONResponse({
        "received": len(items),
        "stored": result.stored,
        "duplicates": result.duplicates,
        "rejected": [{"index": i, "errors": [p.as_dict() for p in exc.problems]} for i, exc in bad],
    })


def _walk(request: Request, direction: str | None, node_id: str, depth: int | None, as_of) -> dict:
    node = parse_node_id(node_id)
    d = request.app.state.settings.default_depth if depth is None else depth
    with request.app.state.db.connection() as conn:
        if direction is None:
            marquez_reads.check_visible(conn, node_id)
            return marquez_reads.enrich_graph(conn, graph.marquez_lineage(conn, node, d, as_of))
        return graph.walk(conn, node, direction, d, as_of).as_dict()  # type: ignore[arg-type]


@router.get("/lineage", summary="Marquez-shaped lineage graph around a node (both directions)", dependencies=[Depends(require(*READ)), Depends(utf8_query)], response_model=models.LineageGraph)
def get_lineage(request: Request, nodeId: NodeIdParam, depth: DepthParam = None, asOf: AsOfParam = None) -> dict:
    return _walk(request, None, nodeId, depth, asOf)


@router.get("/lineage/upstream", summary="Everything a node was built from, up to `depth` jobs away", dependencies=[Depends(require(*READ)), Depends(utf8_query)], response_model=models.Walk)
def get_upstream(request: Request, nodeId: NodeIdParam, depth: DepthParam = None, asOf: AsOfParam = None) -> dict:
    return _walk(request, "upstream", nodeId, depth, asOf)


@router.get("/lineage/downstream", summary="Everything built from a node, up to `depth` jobs away", dependencies=[Depends(require(*READ)), Depends(utf8_query)], response_model=models.Walk)
def get_downstream(request: Request, nodeId: NodeIdParam, depth: DepthParam = None, asOf: AsOfParam = None) -> dict:
    return _walk(request, "downstream", nodeId, depth, asOf)


def _impact(request: Request, node_id: str, as_of) -> dict:
    from lineage.store.impact import contracts_as_of, impact

    node = parse_node_id(node_id)
    with request.app.state.db.connection() as conn:
        answer = impact(conn, node, as_of).as_dict()
        if node.type == "dataset":
            answer["contracts"] = contracts_as_of(conn, node, as_of)
    return answer


@router.get("/lineage/impact", summary="Everything built from a node at any depth, by kind, with each model's training runs", dependencies=[Depends(require(*READ)), Depends(utf8_query)])
def get_impact(request: Request, nodeId: NodeIdParam, asOf: AsOfParam = None) -> Response:
    # Encoded here, not by FastAPI's jsonable_encoder, which walks every one of tens of
    # thousands of items in Python: half the route's time on a 10,000-descendant answer.
    return Response(content=msgspec.json.encode(_impact(request, nodeId, asOf)), media_type="application/json")
