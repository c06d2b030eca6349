"""``lineage spool ...``: what the spooling transport is holding, and sending it.

``status`` reads the spool directory (no server): pending events (written but not yet
acknowledged by the server), rejected ones (our server's 400 naming a field, or its 413: an event over its size limit) and malformed
lines put aside.  It exits 0 whatever it finds; ``--json`` prints the counts.

``replay`` sends every pending event no live process still owns, with the token in
``--token`` / ``LINEAGE_TOKEN`` (a role in ``emitter``) to ``--url`` / ``LINEAGE_URL``.  It
ignores the transport's backoff (an operator asked), stops at the first event the server does
not take (the rest stay pending), and exits non-zero then, with one ``error:`` line saying why;
an event a proxy refuses as too large (413) stays pending without stopping it, and is reported
the same way.
When the server took what was sent, it clears the transports' shared backoff, so workers that
were only spooling deliver again at their next event.
Safe to run from cron, from a DAG, or twice at once: the store keeps one copy of each event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="The lineage transport's spool: status, and replaying pending events.", no_args_is_help=True)

DIR_HELP = "The spool directory (default: LINEAGE_HOME/spool, as the transport's default)."


def _directory(directory: Optional[Path]) -> Path:
    if directory is not None:
        return directory
    from lineage.config import Settings

    return Settings().spool_dir


@app.command()
def status(
    directory: Optional[Path] = typer.Option(None, "--dir", help=DIR_HELP),
    json_: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Count pending, rejected and malformed events in the spool."""
    from lineage.airflow.spool import status as spool_status
    from lineage.console import plain

    s = spool_status(_directory(directory))
    if json_:
        typer.echo(json.dumps(s.as_dict()))
        return
    typer.echo(f"spool {plain(str(s.directory))}: {s.pending} pending in {s.pending_files} file(s), "
               f"{s.rejected} rejected, {s.malformed} malformed")


@app.command()
def replay(
    directory: Optional[Path] = typer.Option(None, "--dir", help=DIR_HELP),
    url: Optional[str] = typer.Option(None, "--url", help="The lineage server (default: LINEAGE_URL)."),
    token: Optional[str] = typer.Option(None, "--token", help="An API token with the role `emitter` (default: LINEAGE_TOKEN)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Send at most this many events."),
) -> None:
    """Send pending events to the server; exit 1 if some could not be delivered."""
    from lineage.airflow.spool import Backoff, replay as spool_replay
    from lineage.airflow.transport import HttpSender
    from lineage.auth.local import client_token
    from lineage.config import Settings
    from lineage.console import plain
    from lineage.contracts.client import refusal
    from lineage.errors import LineageError

    settings = Settings()
    folder = _directory(directory)
    secret = client_token(settings, token)
    sender = HttpSender(url or settings.server_url, api_key=secret, timeout=30)
    try:
        result = spool_replay(folder, sender, limit=limit)
    finally:
        sender.close()
    if result.stopped is None and (result.delivered or result.rejected or result.too_large):
        # The server answered: the transports sharing this spool may stop backing off now,
        # rather than spooling only until their own (up to retry_cap) wait runs out.
        Backoff(folder).succeeded()
    typer.echo(f"spool {plain(str(folder))}: {result.delivered} delivered, {result.rejected} rejected, "
               f"{len(result.malformed)} malformed put aside, {result.pending} still pending"
               + (f", {result.busy} file(s) in use by a running task" if result.busy else "")
               + (f", {result.too_large} too large for a proxy" if result.too_large else ""), err=True)
    for where in result.malformed:
        typer.echo(f"malformed line put aside: {plain(where)}", err=True)
    stopped = result.stopped
    if stopped is None and result.too_large:
        raise LineageError(f"{result.too_large} event(s) were refused as too large (HTTP 413) by a proxy in front of "
                           f"{sender.url}; they stay pending: raise the proxy's request-body limit (e.g. nginx "
                           "`client_max_body_size`) to the server's LINEAGE_MAX_BODY_BYTES and replay again")
    if stopped is None:
        return
    if stopped.status in (401, 403):
        try:
            message = json.loads(stopped.reason.split(": ", 1)[1]).get("message", stopped.reason)
        except (ValueError, IndexError, AttributeError):
            message = stopped.reason
        needs = " (replay needs the role `emitter`)" if stopped.status == 401 else ""
        raise LineageError(f"{refusal(stopped.status, message, sent=bool(secret))}{needs}; the events stay pending")
    raise LineageError(f"the lineage server at {sender.url} did not take an event ({stopped.reason}); "
                       "the events stay pending: check that `lineage serve` is reachable and replay again")
