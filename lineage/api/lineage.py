"""OpenLineage ingest (``POST /api/v1/lineage``, ``/batch``) and lineage queries.

Ingest answers as Marquez does (201, empty body) so the OpenLineage HTTP transport and
Airflow's provider work unchanged.  A rejected event is a 400 whose body names each field
at fault; nothing of it is stored.  The batch endpoint stores the valid events in one
transaction and reports each rejected one by index.
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lineage.api.deps import depth_param, read_body, time_param
from lineage.errors import BadRequest, FieldProblem, InvalidEvent, PayloadTooLarge
from lineage.events import decode_body, parse_event, parse_events, parse_node_id
from lineage.events.model import ParsedEvent
from lineage.store import graph
from lineage.store.ingest import IngestResult, ingest_events

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


def split_batch(body: bytes, content_type: str) -> tuple[list, list[tuple[int, InvalidEvent]]]:
    """Decode a JSON array or NDJSON body into values; undecodable NDJSON lines are rejected by index.

    An array is first split into its elements' raw bytes (cheap), then each element is decoded
    on its own, so one pass over the body does the work of validation and decoding.
    """
    stripped = body.lstrip()
    if stripped.startswith(b"[") and "ndjson" not in content_type:
        try:
            items = _split_array.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidEvent([FieldProblem("$", f"not a valid JSON array: {exc}")]) from None
        return [decode_body(bytes(item)) for item in items], []
    if stripped.startswith((b"{", b"[")) is False and stripped:
        raise BadRequest("$", "a batch must be a JSON array of events or NDJSON")
    values, bad = [], []
    for i, line in enumerate(l for l in body.splitlines() if l.strip()):
        try:
            values.append(decode_body(line))
        except InvalidEvent as exc:
            values.append(None)
            bad.append((i, exc))
    return values, bad


@router.post("/lineage/batch", summary="Ingest a JSON array (or NDJSON) of OpenLineage events")
async def post_batch(request: Request) -> JSONResponse:
    body = await read_body(request)
    values, undecodable = split_batch(body, request.headers.get("content-type", ""))
    limit = request.app.state.settings.max_batch_events
    if len(values) > limit:
        raise PayloadTooLarge(f"batch of {len(values)} events exceeds the limit of {limit} (LINEAGE_MAX_BATCH_EVENTS); split it")
    skip = {i for i, _ in undecodable}
    good, bad = parse_events([v for i, v in enumerate(values) if i not in skip]) if not skip else _parse_with_gaps(values, skip)
    bad = sorted(bad + undecodable, key=lambda b: b[0])
    result = await run_in_threadpool(_store, request, good) if good else IngestResult(0, 0)
    return JSONResponse({
        "received": len(values),
        "stored": result.stored,
        "duplicates": result.duplicates,
        "rejected": [{"index": i, "errors": [p.as_dict() for p in exc.problems]} for i, exc in bad],
    })


def _parse_with_gaps(values: list, skip: set[int]):
    good, bad = [], []
    for i, v in enumerate(values):
        if i in skip:
            continue
        try:
            good.append(parse_event(v))
        except InvalidEvent as exc:
            bad.append((i, exc))
    return good, bad


def _walk(request: Request, direction: str | None, node_id: str | None, depth: str | None, as_of: str | None) -> dict:
    if not node_id:
        raise BadRequest("nodeId", "required, e.g. nodeId=dataset:NAMESPACE:NAME")
    node = parse_node_id(node_id)
    d = depth_param(depth, request.app.state.settings.default_depth)
    t = time_param("asOf", as_of)
    with request.app.state.db.connection() as conn:
        if direction is None:
            return graph.marquez_lineage(conn, node, d, t)
        return graph.walk(conn, node, direction, d, t).as_dict()  # type: ignore[arg-type]


@router.get("/lineage", summary="Marquez-shaped lineage graph around a node (both directions)")
def get_lineage(request: Request, nodeId: str | None = None, depth: str | None = None, asOf: str | None = None) -> dict:
    return _walk(request, None, nodeId, depth, asOf)


@router.get("/lineage/upstream", summary="Everything a node was built from, up to `depth` jobs away")
def get_upstream(request: Request, nodeId: str | None = None, depth: str | None = None, asOf: str | None = None) -> dict:
    return _walk(request, "upstream", nodeId, depth, asOf)


@router.get("/lineage/downstream", summary="Everything built from a node, up to `depth` jobs away")
def get_downstream(request: Request, nodeId: str | None = None, depth: str | None = None, asOf: str | None = None) -> dict:
    return _walk(request, "downstream", nodeId, depth, asOf)
