"""Shared request plumbing: the database dependency, bounded body reading, typed read parameters.

Read parameters are declared with FastAPI's own validation (``Query(ge=, le=)``, typed
``datetime``), so the OpenAPI document shows every bound and a bad value is a 400 naming the
parameter (``query.limit: ...``) through the app's validation handler, never a 500:

* names, node ids and filters may not contain NUL, which PostgreSQL cannot hold in ``text``,
  nor percent-encoded bytes that are not UTF-8 (``%FF``), which name nothing;
* integers are bounded so they fit PostgreSQL's ``bigint`` (``offset`` < 2^63);
* times are read as UTC when they carry no offset, and refused when their UTC value does not
  fit Python's ``datetime`` (``9999-12-31T23:59:59-14:00``).
"""


from __future__ import annotations

import zlib
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes
from datetime import datetime, timezone
from typing import Annotated

from fastapi import Query, Request
from pydantic import AfterValidator

from lineage.errors import BadRequest, PayloadTooLarge
from lineage.store.db import Database


def get_db(request: Request) -> Database:
    return request.app.state.db


async def read_body(request: Request) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip``; 413 past the configured limit."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes (LINEAGE_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (LINEAGE_MAX_BODY_BYTES)")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "x-gzip"):
        # Decompress with a bound so a small bomb cannot blow past the limit.
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = d.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest("Content-Encoding", f"body is not valid gzip: {exc}") from None
        if len(body) > limit or d.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes (LINEAGE_MAX_BODY_BYTES)")
    elif encoding not in ("", "identity"):
        raise BadRequest("Content-Encoding", f"`{encoding}` is not supported; send gzip or an uncompressed body")
    return body


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000)")
    # Lone surrogates are what undecodable percent bytes (`%FF`) become in a path parameter
    # (see marquez.EncodedPathRoute); no stored name holds one.
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("is not valid UTF-8 once percent-decoded")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:  # no offset: read as UTC, as ingest does
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is outside the representable range (years 1 to 9999 in UTC)") from None


def utf8_query(request: Request) -> None:
    """Refuse a query value whose percent bytes are not UTF-8 (a 400 naming it).

    Starlette decodes the query string with replacement, so ``?namespace=%FF`` would reach
    the handler as U+FFFD and answer for a name really spelt that way.  Used as a route
    dependency on the read routes; it reads the raw query string, before that decoding.
    """
    for pair in request.scope.get("query_string", b"").split(b"&"):
        key, _, value = pair.partition(b"=")
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            name = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8", "replace")
            raise BadRequest(f"query.{name}", "is not valid UTF-8 once percent-decoded") from None


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string parameter that PostgreSQL can compare: no NUL, no lone surrogate."""

UtcTime = Annotated[datetime, AfterValidator(_utc)]
"""An ISO 8601 date-time, in UTC; no offset means UTC."""

MAX_LIMIT = 1000
MAX_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET is a bigint


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items to return.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many matching items to skip (prefer `cursor` on long lists).")] = 0,
) -> Page:
    """``limit``/``offset`` as Marquez clients send them."""
    return Page(limit, offset)


NodeIdParam = Annotated[Text, Query(description="`dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME`", examples=["dataset:curated:training.face_photos_v1"])]
DepthParam = Annotated[int | None, Query(ge=0, le=100, description="How many jobs away to walk (default: LINEAGE_DEFAULT_DEPTH, 20).")]
AsOfParam = Annotated[UtcTime | None, Query(description="Answer from the edges recorded at or before this moment.")]
CursorParam = Annotated[Text | None, Query(max_length=200, description="Opaque key of the last item of the previous page (`nextCursor`); pages by key, not by offset.")]
