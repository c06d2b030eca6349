"""Read a file of OpenLineage events and send it to the store in batches.

Used by ``lineage ingest`` and by the spool replay (the transport's ``pending-*.ndjson`` files,
including events it kept because the server refused its token: replay them with a valid one).
A 401/403 stops the replay with one line naming what is missing; replaying again is safe
because the store deduplicates events by the hash of their canonical form.  NDJSON problems are reported as
``FILE:LINE``; JSON-array problems as ``FILE: item N``.  Events are sent over HTTP to a
running server (the batch endpoint) or, with ``direct``, written straight into the store.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from lineage.config import Settings, api_url
from lineage.errors import InvalidEvent, LineageError


@dataclass
class Summary:
    stored: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)


def read_events(path: Path) -> tuple[list, list[str]]:
    """Decoded values and their locations (``FILE:LINE`` or ``FILE: item N``)."""
    from lineage.events import decode_body

    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise LineageError(f"cannot read {path}: {exc.strerror}") from None
    if data.lstrip().startswith(b"["):
        try:
            values = decode_body(data)
        except InvalidEvent as exc:
            raise LineageError(f"{path}: {exc.problems[0].reason}") from None
        return values, [f"{path}: item {i}" for i in range(len(values))]
    values, where = [], []
    for lineno, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            values.append(line)
            where.append(f"{path}:{lineno}")
    return values, where


def ingest_file(path: Path, settings: Settings, *, batch_size: int = 1000, direct: bool = False, quiet: bool = False) -> Summary:
    from rich.console import Console
    from rich.progress import Progress

    from lineage.console import safe
    from lineage.events import parse_event
    from lineage.events.model import parse_raw

    console = Console(stderr=True, quiet=quiet)
    values, where = read_events(path)
    summary = Summary()
    good: list = []
    for value, loc in zip(values, where):
        try:
            # NDJSON lines stay bytes: parse_raw knows whether the line held a float and
            # can then take the fast canonical path.
            good.append((loc, parse_raw(value) if isinstance(value, bytes) else parse_event(value)))
        except InvalidEvent as exc:
            summary.rejected.append(f"{loc}: {exc.problems[0].path}: {exc.problems[0].reason}")
    sender = _DirectSender(settings) if direct else _HttpSender(settings)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"ingesting {safe(path)}", total=len(good))
            for start in range(0, len(good), batch_size):
                chunk = good[start : start + batch_size]
                stored, dups, rejected = sender.send([ev for _, ev in chunk])
                summary.stored += stored
                summary.duplicates += dups
                summary.rejected += [f"{chunk[i][0]}: {reason}" for i, reason in rejected]
                progress.advance(task, len(chunk))
    finally:
        sender.close()
    for line in summary.rejected:  # reasons quote names from the events: escape them
        console.print(f"[red]rejected[/red] {safe(line)}", highlight=False, soft_wrap=True)
    console.print(f"{safe(path)}: {summary.stored} stored, {summary.duplicates} duplicate, {len(summary.rejected)} rejected", highlight=False, soft_wrap=True)
    return summary


class _HttpSender:
    def __init__(self, settings: Settings) -> None:
        import httpx

        from lineage.auth.local import auth_headers

        self.url = api_url(settings.server_url, "/api/v1/lineage/batch")
        self.client = httpx.Client(timeout=60, headers=auth_headers(settings))

    def send(self, events: list) -> tuple[int, int, list[tuple[int, str]]]:
        import httpx

        body = b"[" + b",".join(ev.payload for ev in events) + b"]"
        try:
            r = self.client.post(self.url, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise LineageError(f"cannot reach the lineage server at {self.url}: {exc}; start it with `lineage serve` or use --direct") from None
        if r.status_code in (401, 403):
            raise LineageError(_refusal(r, "authorization" in self.client.headers)) from None
        if r.status_code != 200:
            raise LineageError(f"server answered {r.status_code} to {self.url}: {r.text[:300]}")
        report = r.json()
        rejected = [(x["index"], f"{x['errors'][0]['field']}: {x['errors'][0]['reason']}") for x in report["rejected"]]
        return report["stored"], report["duplicates"], rejected

    def close(self) -> None:
        self.client.close()


def _refusal(r, sent: bool) -> str:
    """One line for a 401/403: what the server said and what to do; nothing was stored."""
    from lineage.contracts.client import refusal

    try:
        message = r.json().get("message") or r.text[:300]
    except ValueError:
        message = r.text[:300]
    needs = " (ingest needs the role `emitter`)" if r.status_code == 401 else ""  # a 403 names it already
    return f"{refusal(r.status_code, message, sent=sent)}{needs}; nothing from this batch was stored, replay the file again with a valid token"


class _DirectSender:
    def __init__(self, settings: Settings) -> None:
        from lineage.store import open_database

        self.db = open_database(settings, migrate=True)

    def send(self, events: list) -> tuple[int, int, list[tuple[int, str]]]:
        from lineage.store.ingest import ingest_events

        with self.db.connection() as conn:
            result = ingest_events(conn, events)
        return result.stored, result.duplicates, []

    def close(self) -> None:
        self.db.close()
