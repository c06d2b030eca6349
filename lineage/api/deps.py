"""Shared request plumbing: the database dependency, bounded body reading, query-parameter checks."""

from __future__ import annotations

import zlib
from datetime import datetime, timezone

from fastapi import Request

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


def paging(limit: str | None, offset: str | None, default: int = 100, maximum: int = 1000) -> tuple[int, int]:
    return _int("limit", limit, default, 1, maximum), _int("offset", offset, 0, 0, None)


def depth_param(value: str | None, default: int) -> int:
    return _int("depth", value, default, 0, 100)


def _int(field: str, value: str | None, default: int, low: int, high: int | None) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(field, f"must be an integer, got `{value}`") from None
    if n < low or (high is not None and n > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(field, f"must be {bound}, got {n}")
    return n


def time_param(field: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(field, f"must be an ISO 8601 date-time, got `{value}`") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t
