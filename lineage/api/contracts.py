"""HTTP API for source contracts (``/api/v1/contracts``) and the gate (``/api/v1/gate``).

Handlers are thin: they parse the request, call :mod:`lineage.contracts.registry` or
:func:`lineage.gate.service.check_gate`, and return JSON.  No SQL here.  Deliberate errors
(``ContractError`` 400 naming file/line/field, ``ContractTooLarge`` 413, ``SelfApprovalRefused``
403, ``Conflict`` 409, ``NotFound`` 404) are rendered by the app's error handler.

Nothing CPU-bound runs on the event loop: parsing a contract (up to
``LINEAGE_MAX_CONTRACT_BYTES``, seconds of work for a large one) happens in the thread pool, and
every other handler is a plain ``def``, which FastAPI runs there too.

The actor of every write is the authenticated :class:`~lineage.auth.principal.Principal` that
:func:`lineage.api.security.require` yields — never a name in the request: an ``as`` field in a
body or query is refused (400), so a client that still believes it can act as someone else
learns otherwise.  Registering needs ``requester``; approving, revoking and expiring need
``steward`` (the registry checks the role again, and separation of duties, declared interests
and four eyes: see :mod:`lineage.contracts.registry`).

Contracts
    ``POST /api/v1/contracts``             body: the ODCS YAML (or JSON) document → 201, state
    ``GET  /api/v1/contracts``             current state of every contract
    ``GET  /api/v1/contracts/{id}``        terms, document and full history
    ``GET  /api/v1/contracts/{id}/suites`` the compiled GX suites
    ``POST /api/v1/contracts/{id}/approve`` ``{"reason"?: TEXT}`` (or no body) → the state:
                                            ``approved``, or ``proposed`` with action ``endorse``
                                            after the first of two special-category approvals
    ``POST /api/v1/contracts/{id}/revoke``  ``{"reason": TEXT}``
    ``POST /api/v1/contracts/expire``       → ``{"expired": [ID, ...]}``

Gate (:data:`gate_router`, to be included beside :data:`router`)
    ``POST /api/v1/gate/check``  ``{"job", "purpose", "inputs": [...], "validate_on_worker"?}`` → the decision
                                 (200 either way; with ``validate_on_worker`` an allowed one is not
                                 final and carries the ``plan`` of suites to run)
    ``POST /api/v1/gate/complete`` ``{"job", "purpose", "inputs", "validated", "validations"}`` → the final,
                                 recorded decision with the worker's GX results
    ``GET  /api/v1/gate/decisions[?job=NS:NAME&limit=N]``
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from lineage.api.deps import AsOfParam, Text, _no_nul, get_db, read_body
from lineage.api.security import DECIDE, DECISION_LOG, GATE_CHECK, READ, REGISTER, require
from lineage.auth.principal import Principal
from lineage.errors import BadRequest
from lineage.store.db import Database

router = APIRouter(prefix="/api/v1/contracts", tags=["contracts"])
gate_router = APIRouter(prefix="/api/v1/gate", tags=["gate"])

# One dependency object per role, so the OpenAPI document and dependency overrides see one each.
as_requester = require(*REGISTER)
as_steward = require(*DECIDE)

NO_AS = "`as` is not accepted: the actor is the authenticated principal (your token or identity)"


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_as(cls, data: object) -> object:
        if isinstance(data, dict) and "as" in data:
            raise ValueError(NO_AS)
        return data


class Approval(_Write):
    reason: Text | None = Field(None, max_length=2000, description="Why (kept in the history).")


class Revocation(_Write):
    reason: Text = Field(..., min_length=1, max_length=2000, description="Why; kept in the history and shown by the gate.")


def _refuse_as_query(request: Request) -> None:
    if "as" in request.query_params:
        raise BadRequest("query.as", NO_AS)


def _plain_json(value: Any) -> Any:
    """Refuse what the decision log and a JSON answer cannot hold: NUL or lone surrogates in
    any string (key or value), NaN or infinities.  Iterative, so depth cannot overflow the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _no_nul(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or infinities")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


class GateRequest(BaseModel):
    job: Text = Field(..., min_length=3, description="NAMESPACE:NAME of the job asking.")
    purpose: Text = Field(..., min_length=1, description="Fides data-use key, e.g. train_ai_system.")
    inputs: list[Text] = Field(..., description="Input datasets, dataset:NAMESPACE:NAME.")
    validate_on_worker: bool = Field(
        False, description="The caller validates the data itself: an allowed answer is not final (`final: false`) and "
                           "carries the `plan` (suites per input); send the results to /api/v1/gate/complete.")


class ReportedValidation(BaseModel):
    dataset: Text = Field(..., min_length=1, description="The input validated, as in the plan.")
    suite: Text = Field(..., min_length=1, description="The suite's name, as in the plan.")
    contract: Text | None = Field(None, description="id@version of the contract the suite came from.")
    success: bool
    results: Annotated[list[dict[str, Any]], AfterValidator(_plain_json)] = Field(
        ..., max_length=10_000, description="Per expectation, as the GX runner summarises it.")
    seconds: float = Field(0.0, ge=0, allow_inf_nan=False)


class GateCompletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: Text = Field(..., min_length=3, description="NAMESPACE:NAME of the job asking.")
    purpose: Text = Field(..., min_length=1)
    inputs: list[Text] = Field(..., description="Input datasets, as in the check.")
    validated: list[Text] = Field(..., description="The inputs the worker had data for and validated.")
    validations: list[ReportedValidation] = Field(..., max_length=1000)


@router.post("", status_code=201, summary="Register a contract (ODCS v3 YAML or JSON body)")
async def register(request: Request, actor: Principal = Depends(as_requester), db: Database = Depends(get_db)) -> JSONResponse:
    # The one async handler here, because it streams the body; everything after that runs in
    # the thread pool so a large or hostile document cannot stall other requests.
    from lineage.contracts.document import too_large

    _refuse_as_query(request)
    limit = request.app.state.settings.max_contract_bytes
    label = request.headers.get("x-contract-file") or "request body"
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(label, f"{declared} bytes", limit)
    body = await read_body(request)
    if len(body) > limit:
        raise too_large(label, f"{len(body)} bytes", limit)
    state = await run_in_threadpool(_parse_and_register, db, body, label, actor, limit)
    return JSONResponse(state.as_dict(), status_code=201)


def _parse_and_register(db: Database, body: bytes, label: str, actor: Principal, limit: int):
    """Decode, parse, check and record a contract; runs in a worker thread."""
    from lineage.contracts import registry
    from lineage.contracts.document import load_contract

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body", "the contract must be UTF-8 YAML or JSON") from None
    doc = load_contract(label, text=text, max_bytes=limit)
    with db.connection() as conn:
        return registry.register(conn, doc, actor)


@router.get("", summary="Every contract with its current status", dependencies=[Depends(require(*READ))])
def list_contracts(db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import registry

    with db.connection() as conn:
        states = registry.list_contracts(conn)
    return {"contracts": [s.as_dict() for s in states], "totalCount": len(states)}


@router.get("/{contract_id}", summary="One contract: terms, document and history", dependencies=[Depends(require(*READ))])
def show(contract_id: str, db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import registry

    with db.connection() as conn:
        return registry.get(conn, contract_id).as_dict(full=True)


@router.get("/{contract_id}/suites", summary="The GX suites compiled from the current revision", dependencies=[Depends(require(*READ))])
def suites(contract_id: str, db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import registry
    from lineage.contracts.compile import compile_terms

    with db.connection() as conn:
        state = registry.get(conn, contract_id)
    return {"contract": state.ref, "suites": list(compile_terms(state.terms, state.sha256).values())}


@router.post("/expire", summary="Mark approved contracts past their expiry date as expired")
def expire(request: Request, actor: Principal = Depends(as_steward), db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.contracts import registry

    _refuse_as_query(request)
    with db.connection() as conn:
        return {"expired": registry.expire_due(conn, actor)}


@router.post("/{contract_id}/approve", summary="Approve as an independent steward (two for special categories)")
def approve(
    request: Request, contract_id: Text, body: Approval | None = None,
    actor: Principal = Depends(as_steward), db: Database = Depends(get_db),
) -> dict[str, Any]:
    from lineage.contracts import registry

    _refuse_as_query(request)
    special = request.app.state.settings.special_categories
    with db.connection() as conn:
        return registry.approve(conn, contract_id, actor, body.reason if body else None, special_categories=special).as_dict()


@router.post("/{contract_id}/revoke", summary="Revoke; later gate checks that depend on it are blocked")
def revoke(
    request: Request, contract_id: Text, body: Revocation, actor: Principal = Depends(as_steward), db: Database = Depends(get_db),
) -> dict[str, Any]:
    from lineage.contracts import registry

    _refuse_as_query(request)
    with db.connection() as conn:
        return registry.revoke(conn, contract_id, actor, body.reason).as_dict()


@gate_router.post("/check", summary="Ask the gate; 200 with `allowed` true or false", dependencies=[Depends(require(*GATE_CHECK))])
def gate_check(request: Request, body: GateRequest, db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.gate import pending
    from lineage.gate.facets import input_facets
    from lineage.gate.service import check_gate

    # Refusals the store cannot take yet wait under this server's own LINEAGE_HOME.
    deferred: dict[str, Any] | None = {} if body.validate_on_worker else None
    decision = check_gate(db, body.job, body.purpose, body.inputs, pending_dir=pending.directory(request.app.state.settings.home),
                          deferred=deferred)
    answer = {**decision.as_dict(), "text": decision.render(), "facets": input_facets(decision), "final": True}
    if deferred is not None and "plan" in deferred:
        answer.update(final=False, plan=deferred["plan"])
    return answer


@gate_router.post("/complete", summary="Record the gate's final decision with the worker's validation results",
                  dependencies=[Depends(require(*GATE_CHECK))])
def gate_complete(request: Request, body: GateCompletion, db: Database = Depends(get_db)) -> dict[str, Any]:
    """The contracts are checked afresh (they may have changed since the check); the worker's
    results are combined with that decision, which is recorded and returned (``final: true``)."""
    from lineage.gate import pending
    from lineage.gate.facets import input_facets
    from lineage.gate.service import check_gate, dataset_id

    inputs = {dataset_id(i) for i in body.inputs}
    for field, values in (("validated", body.validated), ("validations.dataset", [v.dataset for v in body.validations])):
        for value in values:
            if dataset_id(value) not in inputs:
                raise BadRequest(field, f"`{value}` is not one of the inputs")
    reported = [{**v.model_dump(), "dataset": dataset_id(v.dataset)} for v in body.validations]
    decision = check_gate(db, body.job, body.purpose, body.inputs, pending_dir=pending.directory(request.app.state.settings.home),
                          reported=(body.validated, reported))
    return {**decision.as_dict(), "text": decision.render(), "facets": input_facets(decision), "final": True}


@gate_router.get("/decisions", summary="Recent gate decisions, newest first", dependencies=[Depends(require(*DECISION_LOG))])
def decisions(job: str | None = None, limit: int = Query(50, ge=1, le=1000), asOf: AsOfParam = None,
              db: Database = Depends(get_db)) -> dict[str, Any]:
    from lineage.gate.service import recent

    with db.connection() as conn:
        return {"decisions": recent(conn, job, limit, asOf)}
