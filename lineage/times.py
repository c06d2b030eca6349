"""The one timestamp format of every answer the package gives: ``2026-11-26T10:00:00.123456Z``.

Marquez's clients parse this form; the HTTP API, the decision log, contract histories and the
facets the gate emits all use it, so a client needs one parser.
"""

from __future__ import annotations

from datetime import datetime, timezone


def iso(t: datetime | None) -> str | None:
    """``t`` in UTC, microseconds and a ``Z`` (naive times are taken as UTC); None stays None."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    # Not strftime("%Y"): glibc writes years below 1000 unpadded ("50-06-01"), which is not
    # ISO 8601 and which the read API's cursors would refuse.  isoformat always pads.
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_as_of(value: str, field: str = "--as-of") -> datetime:
    """An ISO 8601 time typed by a user, in UTC (no offset means UTC); a BadRequest naming ``field`` otherwise."""
    from lineage.errors import BadRequest

    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise BadRequest(field, f"`{value}` is not an ISO 8601 time (e.g. 2026-11-20T10:00:00Z)") from None
