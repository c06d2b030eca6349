"""OpenLineage ingest (``POST /api/v1/lineage``, ``/batch``) and lineage queries.

Ingest answers as Marquez does (201, empty body) so the OpenLineage HTTP transport and
Airflow's provider work unchanged.  A rejected event is a 400 whose body names each field
at fault; nothing of it is stored.  The batch endpoint stores the valid events in one
transaction and reports each rejected one by index.
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lineage.api import models
from lineage.api.deps import AsOfParam, DepthParam, NodeIdParam, read_body, utf8_query
from lineage.errors import BadRequest, FieldProblem, InvalidEvent, PayloadTooLarge
from lineage.events import decode_body, parse_event, parse_node_id
from lineage.events.model import ParsedEvent
from lineage.store import graph
from lineage.store.ingest import IngestResult, ingest_batch, ingest_events

router = APIRouter(prefix="/api/v1", tags=["lineage"])


def _store(request: Request, events: list[ParsedEvent]) -> IngestResult:
    with request.app.state.db.connection() as conn:
        return ingest_events(conn, events)


@router.post("/lineage", status_code=201, summary="Ingest one OpenLineage event")
async def post_event(request: Request) -> Response:
    event = parse_event(decode_body(await read_body(request)))
    await run_in_threadpool(_store, request, [event])
    return Response(status_code=201)


_split_array = msgspec.json.Decoder(list[msgspec.Raw])


def split_batch(body: bytes, content_type: str) -> list[bytes]:
    """Split a JSON array or NDJSON body into each event's raw JSON, without decoding the events.

    Each event is decoded and validated on its own later, so a bad one is rejected by its
    index (its line, for NDJSON) and the rest are stored.
    """
    stripped = body.lstrip()
    if stripped.startswith(b"[") and "ndjson" not in content_type:
        try:
            return [bytes(item) for item in _split_array.decode(body)]
        except msgspec.DecodeError as exc:
            raise InvalidEvent([FieldProblem("$", f"not a valid JSON array: {exc}")]) from None
    if stripped and not stripped.startswith((b"{", b"[")):
        raise BadRequest("$", "a batch must be a JSON array of events or NDJSON")
    return [line for line in body.splitlines() if line.strip()]


def _store_batch(request: Request, items: list[bytes]):
    with request.app.state.db.connection() as conn:
        return ingest_batch(conn, items)


@router.post("/lineage/batch", summary="Ingest a JSON array (or NDJSON) of OpenLineage events")
async def post_batch(request: Request) -> JSONResponse:
    body = await read_body(request)
    items = split_batch(body, request.headers.get("content-type", ""))
    limit = request.app.state.settings.max_batch_events
    if len(items) > limit:
        raise PayloadTooLarge(f"batch of {len(items)} events exceeds the limit of {limit} (LINEAGE_MAX_BATCH_EVENTS); split it")
    result, bad = await run_in_threadpool(_store_batch, request, items)
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
            return graph.marquez_lineage(conn, node, d, as_of)
        return graph.walk(conn, node, direction, d, as_of).as_dict()  # type: ignore[arg-type]


@router.get("/lineage", summary="Marquez-shaped lineage graph around a node (both directions)", dependencies=[Depends(utf8_query)], response_model=models.LineageGraph)
def get_lineage(request: Request, nodeId: NodeIdParam, depth: DepthParam = None, asOf: AsOfParam = None) -> dict:
    return _walk(request, None, nodeId, depth, asOf)


@router.get("/lineage/upstream", summary="Everything a node was built from, up to `depth` jobs away", dependencies=[Depends(utf8_query)], response_model=models.Walk)
def get_upstream(request: Request, nodeId: NodeIdParam, depth: DepthParam = None, asOf: AsOfParam = None) -> dict:
    return _walk(request, "upstream", nodeId, depth, asOf)


@router.get("/lineage/downstream", summary="Everything built from a node, up to `depth` jobs away", dependencies=[Depends(utf8_query)], response_model=models.Walk)
def get_downstream(request: Request, nodeId: NodeIdParam, depth: DepthParam = None, asOf: AsOfParam = None) -> dict:
    return _walk(request, "downstream", nodeId, depth, asOf)
