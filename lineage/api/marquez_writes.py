"""The writes the Marquez UI offers: tags and soft deletes, for stewards, each one recorded.

* ``PUT /api/v1/tags/{tag}`` (body ``{"description": ...}``, optional) defines a tag or gives
  it a new description; answers every tag, as Marquez does.
* ``POST`` (Marquez's verb) or ``PUT``, and ``DELETE``, on ``.../datasets/{ds}/tags/{tag}``,
  ``.../datasets/{ds}/fields/{field}/tags/{tag}`` and ``.../jobs/{job}/tags/{tag}`` add or
  remove a defined tag; they answer the dataset or job as it now is.
* ``DELETE /api/v1/namespaces/{ns}/datasets/{ds}`` and ``.../jobs/{job}`` hide the node (a
  soft delete: every event and derived row stays, see :mod:`lineage.store.tags`) and answer
  it as it was.

Every write needs the ``steward`` role (the people who govern what data is and means) and
records the authenticated principal and the time in an append-only table; the principal is
never taken from the request body.  An anonymous viewer (``LINEAGE_ANONYMOUS_VIEWER``) only
ever reads: these routes answer it 401.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from lineage.api.deps import Text, read_body, utf8_query
from lineage.api.marquez import EncodedPathRoute
from lineage.api.security import DECIDE, require
from lineage.auth import Principal
from lineage.errors import BadRequest
from lineage.store import reads, tags

WRITE = DECIDE  # ("steward",)
router = APIRouter(prefix="/api/v1", tags=["marquez"], route_class=EncodedPathRoute, dependencies=[Depends(utf8_query)])

Namespace = Annotated[Text, Path(description="The namespace, percent-encoded.")]
DatasetName = Annotated[Text, Path(description="The dataset name, percent-encoded.")]
JobName = Annotated[Text, Path(description="The job name, percent-encoded.")]
TagName = Annotated[Text, Path(max_length=255, description="The tag's name.")]
FieldName = Annotated[Text, Path(description="The field's name, percent-encoded.")]
Steward = Annotated[Principal, Depends(require(*WRITE))]


def _description(body: bytes) -> str | None:
    if not body.strip():
        return None
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("$", "the body must be JSON: {\"description\": \"...\"}") from None
    if not isinstance(value, dict):
        raise BadRequest("$", "the body must be a JSON object: {\"description\": \"...\"}")
    description = value.get("description")
    if description is not None and (not isinstance(description, str) or "\x00" in description or len(description) > 10_000):
        raise BadRequest("$.description", "must be a string of at most 10,000 characters without NUL")
    return description


@router.put("/tags/{tag}", summary="Define a tag (or describe it anew)")
async def put_tag(request: Request, tag: TagName, principal: Steward) -> dict:
    description = _description(await read_body(request))

    def write(conn):
        tags.define_tag(conn, tag, description, principal.name)
        return tags.list_tags(conn, 1000, 0)

    return request.app.state.db.run(write)


def _tag_dataset(request: Request, principal: Principal, namespace: str, dataset: str, field: str | None, tag: str,
                 action: str) -> dict:
    def write(conn):
        tags.change_tag(conn, "field" if field is not None else "dataset", namespace, dataset, field, tag, action, principal.name)
        return reads.get_dataset(conn, namespace, dataset)

    return request.app.state.db.run(write)


def _tag_job(request: Request, principal: Principal, namespace: str, job: str, tag: str, action: str) -> dict:
    def write(conn):
        tags.change_tag(conn, "job", namespace, job, None, tag, action, principal.name)
        return reads.get_job(conn, namespace, job)

    return request.app.state.db.run(write)


_DS_TAG = "/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"
_FIELD_TAG = "/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"
_JOB_TAG = "/namespaces/{namespace}/jobs/{job}/tags/{tag}"


@router.post(_DS_TAG, summary="Tag a dataset")
@router.put(_DS_TAG, summary="Tag a dataset", include_in_schema=False)
def tag_dataset(request: Request, namespace: Namespace, dataset: DatasetName, tag: TagName, principal: Steward) -> dict:
    return _tag_dataset(request, principal, namespace, dataset, None, tag, "add")


@router.delete(_DS_TAG, summary="Untag a dataset")
def untag_dataset(request: Request, namespace: Namespace, dataset: DatasetName, tag: TagName, principal: Steward) -> dict:
    return _tag_dataset(request, principal, namespace, dataset, None, tag, "remove")


@router.post(_FIELD_TAG, summary="Tag a dataset's field")
@router.put(_FIELD_TAG, summary="Tag a dataset's field", include_in_schema=False)
def tag_field(request: Request, namespace: Namespace, dataset: DatasetName, field: FieldName, tag: TagName,
              principal: Steward) -> dict:
    return _tag_dataset(request, principal, namespace, dataset, field, tag, "add")


@router.delete(_FIELD_TAG, summary="Untag a dataset's field")
def untag_field(request: Request, namespace: Namespace, dataset: DatasetName, field: FieldName, tag: TagName,
                principal: Steward) -> dict:
    return _tag_dataset(request, principal, namespace, dataset, field, tag, "remove")


@router.post(_JOB_TAG, summary="Tag a job")
@router.put(_JOB_TAG, summary="Tag a job", include_in_schema=False)
def tag_job(request: Request, namespace: Namespace, job: JobName, tag: TagName, principal: Steward) -> dict:
    return _tag_job(request, principal, namespace, job, tag, "add")


@router.delete(_JOB_TAG, summary="Untag a job")
def untag_job(request: Request, namespace: Namespace, job: JobName, tag: TagName, principal: Steward) -> dict:
    return _tag_job(request, principal, namespace, job, tag, "remove")


@router.delete("/namespaces/{namespace}/datasets/{dataset}", summary="Delete (hide) a dataset; its history stays")
def delete_dataset(request: Request, namespace: Namespace, dataset: DatasetName, principal: Steward) -> dict:
    def write(conn):
        before = reads.get_dataset(conn, namespace, dataset)
        tags.delete_node(conn, "dataset", namespace, dataset, principal.name)
        return {**before, "deleted": True}

    return request.app.state.db.run(write)


@router.delete("/namespaces/{namespace}/jobs/{job}", summary="Delete (hide) a job; its history stays")
def delete_job(request: Request, namespace: Namespace, job: JobName, principal: Steward) -> dict:
    def write(conn):
        before = reads.get_job(conn, namespace, job)
        tags.delete_node(conn, "job", namespace, job, principal.name)
        return before

    return request.app.state.db.run(write)
