"""``lineage audit ...``: seal the ledger, sign checkpoints, verify, export and verify bundles.

``seal``, ``checkpoint``, ``verify`` and ``export`` use the database credentials (the store's
application role, or the reader's for ``verify``/``export``); ``verify-bundle`` uses nothing
but a directory.  ``verify`` and ``verify-bundle`` exit 0 when everything holds and 1 when
anything does not, printing the first problem (the record's table and key) on stderr.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from lineage.console import plain

app = typer.Typer(help="The tamper-evident ledger: seal, checkpoint, verify, export evidence.", no_args_is_help=True)


def _settings():
    from lineage.config import Settings

    return Settings()


def _time(value: Optional[str], option: str) -> Optional[datetime]:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"`{value}` is not an ISO 8601 time (e.g. 2026-11-27T00:00:00Z)", param_hint=option) from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _report(report, json_: bool) -> None:
    if json_:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        for line in report.summary().splitlines():
            typer.echo(plain(line), err=not report.ok)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def seal() -> None:
    """Seal every finished queue entry into blocks now (the server also does this on its own)."""
    from lineage.audit.seal import seal_all
    from lineage.store.db import open_database

    with open_database(_settings(), migrate=True) as db, db.connection() as conn:
        blocks = seal_all(conn)
    typer.echo(f"sealed {len(blocks)} block(s)" + (f", up to block {blocks[-1].seq} (entry {blocks[-1].last})" if blocks else ""))


@app.command()
def checkpoint() -> None:
    """Seal, then sign the ledger's head with the key outside the database; write it to the
    checkpoint directory and print it as one JSON line."""
    from lineage.audit import checkpoint as cp
    from lineage.audit.seal import seal_all
    from lineage.store.db import open_database

    settings = _settings()
    paths = cp.AuditPaths.from_env(settings.home)
    key = cp.load_or_create_key(paths)
    with open_database(settings, migrate=True) as db:
        with db.connection() as conn:
            seal_all(conn)
        with db.connection() as conn:
            signed = cp.make(conn, key)
    if signed is None:
        typer.echo("error: the ledger has no sealed block yet: nothing to sign", err=True)
        raise typer.Exit(2)
    cp.write(paths, signed)
    typer.echo(json.dumps(signed, sort_keys=True))


def _public(paths, given: Optional[Path]) -> bytes | None:
    from lineage.audit import checkpoint as cp

    if given is not None:
        return given.read_bytes()
    if cp.public_path(paths).exists():
        return cp.public_path(paths).read_bytes()
    if paths.key_file.exists():
        return cp.public_pem(cp.load_or_create_key(paths).public_key())
    return None


@app.command()
def verify(
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="Trusted checkpoint public key (PEM); default: beside the signing key."),
    json_: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
    archive: Optional[Path] = typer.Option(None, "--archive", help="Directory `lineage maintain retain` archived to: "
                                           "re-hash the retained records against the ledger too."),
) -> None:
    """Re-hash every record, check every block, link and checkpoint; exit 1 naming the first
    altered, deleted or inserted record.  Records a retention archived count as retained; with
    --archive their archives are checked too."""
    from lineage.audit import checkpoint as cp
    from lineage.audit.verify import verify as run
    from lineage.store.db import open_database

    settings = _settings()
    paths = cp.AuditPaths.from_env(settings.home)
    pem = _public(paths, public_key)
    checkpoints = cp.read_all(paths.checkpoint_dir)
    with open_database(settings, migrate=True) as db, db.connection() as conn:
        # One pooled connection is this one; the split verification may use the others.
        workers = max(1, min(4, os.cpu_count() or 1, settings.pool_max_size - 1))
        report = run(conn, checkpoints, cp.load_public(pem) if pem else None, connect=db.connection, workers=workers,
                     archive=archive)
    if pem is None and checkpoints:
        from lineage.audit.report import Problem

        report.problems.append(Problem("checkpoint", "checkpoints exist but no public key to check them: pass --public-key"))
    from lineage.audit.status import record_verification

    first = report.first
    record_verification(paths, {"at": datetime.now(timezone.utc).isoformat(), "ok": report.ok, "records": report.records,
                                "blocks": report.blocks, "checkpoints": report.checkpoints,
                                "problems": len(report.problems), "first": first.line() if first else None})
    _report(report, json_)


@app.command()
def export(
    directory: Path = typer.Argument(..., help="A new (or empty) directory for the bundle."),
    from_: Optional[str] = typer.Option(None, "--from", help="Start of the time range (ISO 8601)."),
    to: Optional[str] = typer.Option(None, "--to", help="End of the time range (ISO 8601)."),
) -> None:
    """Write an evidence bundle (records, entries, blocks, checkpoints, public key, README)."""
    from lineage.audit import checkpoint as cp
    from lineage.audit.bundle import export as run
    from lineage.store.db import open_database

    settings = _settings()
    paths = cp.AuditPaths.from_env(settings.home)
    start, end = _time(from_, "--from"), _time(to, "--to")
    with open_database(settings, migrate=True) as db, db.connection() as conn:
        manifest = run(conn, directory, paths.checkpoint_dir, _public(paths, None), start, end)
    typer.echo(plain(f"exported blocks {manifest['blocks'][0]}-{manifest['blocks'][1]} with {manifest['checkpoints']} "
                     f"checkpoint(s) to {directory}"))


@app.command("verify-bundle")
def verify_bundle(
    directory: Path = typer.Argument(..., help="The bundle directory."),
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="Trusted public key (PEM); default: the bundle's own."),
    json_: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
) -> None:
    """Check an evidence bundle offline: no database, no server."""
    from lineage.audit.bundle import verify_bundle as run

    _report(run(directory, public_key.read_bytes() if public_key else None), json_)
