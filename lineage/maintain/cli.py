"""``lineage maintain``: partitions ahead and retention, as the owner database role.

Both commands connect like ``lineage db upgrade`` (``LINEAGE_MIGRATION_DATABASE_URL`` when
``LINEAGE_DATABASE_URL`` is set; the embedded server's owner role otherwise) and are safe to
run from a CronJob on several pods at once: an advisory lock serialises them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from lineage.console import plain

app = typer.Typer(help="Store maintenance as the owner role: partitions ahead, retention.", no_args_is_help=True)


def _owner_url() -> str:
    from lineage.config import Settings
    from lineage.errors import ConfigError
    from lineage.store.db import resolve_migration_url
    from lineage.store.migrate import _as_owner
    from lineage.store.roles import Roles

    settings = Settings()
    url = resolve_migration_url(settings)
    if url is None:
        raise ConfigError("LINEAGE_MIGRATION_DATABASE_URL is unset: maintenance runs as the owner database role; "
                          "set it to the owner's URL (deploy/README.md)")
    return _as_owner(url, Roles.from_settings(settings))


@app.command()
def partitions(ahead: int = typer.Option(3, "--ahead", min=0, max=120, help="Months to create ahead of the current one.")) -> None:
    """Create the monthly partitions of raw_events ahead (idempotent); move rows the DEFAULT partition caught."""
    from lineage.errors import ConfigError, StoreBusy
    from lineage.maintain.partitions import BUSY, ensure_partitions, list_partitions

    import psycopg

    url = _owner_url()
    try:
        created = ensure_partitions(url, ahead)
    except psycopg.errors.LockNotAvailable:
        raise StoreBusy("raw_events stayed busy (long reads) for the lock timeout: run again shortly; the DEFAULT "
                        "partition holds new events meanwhile") from None
    if created is None:
        raise ConfigError("the store has no partitioned history yet: run `lineage db upgrade` first")
    if created == BUSY:
        typer.echo("another maintenance run holds the lock and does the work; nothing done here")
        return
    with psycopg.connect(url) as conn:
        names = [p[0] for p in list_partitions(conn)]
    typer.echo(plain(f"{created} partition(s) created; {len(names)} in all: {', '.join(names)}"))


@app.command()
def retain(
    before: str = typer.Option(..., "--before", help="YYYY-MM-DD: archive and drop partitions recorded entirely before it."),
    archive: Path = typer.Option(..., "--archive", help="Directory for the archives (kept: `lineage audit verify --archive` reads them)."),
) -> None:
    """Archive whole partitions of raw_events older than --before with their ledger proofs, then drop them."""
    from lineage.errors import BadRequest
    from lineage.maintain.retention import retain as run

    try:
        cutoff = date.fromisoformat(before)
    except ValueError:
        raise BadRequest("--before", f"`{before}` is not a date (YYYY-MM-DD)") from None
    done = run(_owner_url(), cutoff, archive)
    for r in done:
        typer.echo(plain(f"retained {r.partition}: {r.rows} event(s) archived to {archive / r.archive} (sha256 {r.sha256})"))
    if not done:
        typer.echo(plain(f"nothing to retain before {cutoff.isoformat()}"))
