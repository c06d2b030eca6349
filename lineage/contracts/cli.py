"""``lineage contracts ...``: register, approve, revoke, list, show, compile.

Thin commands over :mod:`lineage.contracts.registry` and :mod:`lineage.contracts.compile`.
Errors are :class:`~lineage.errors.LineageError`s; the top-level ``lineage`` command prints them
as one line and exits 2.  The store is the one configured by ``LINEAGE_*`` settings (migrated on
first use).  Everything a document or a user supplied (ids, names, actors, reasons) is printed
through :func:`lineage.console.plain`, so it cannot drive the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lineage.console import plain

app = typer.Typer(
    help="Source contracts: ODCS v3 documents that say which purposes a partner's data may serve.",
    no_args_is_help=True,
)


def _settings():
    from lineage.config import Settings

    return Settings()


def _db(settings=None):
    from lineage.store.db import open_database

    return open_database(settings or _settings(), migrate=True)


def _echo(text: str) -> None:
    typer.echo(plain(text))


def _print_state(state, as_json: bool, full: bool = False) -> None:
    if as_json:
        typer.echo(json.dumps(state.as_dict(full=full), indent=2, default=str))
        return
    t = state.terms
    _echo(f"{state.ref}  {state.status}  (revision {state.revision}, by {state.actor}, {state.recorded_at:%Y-%m-%d %H:%M}Z)")
    _echo(f"  provider    {t.provider}    requester {t.requester}    legal basis {t.legal_basis}")
    _echo(f"  datasets    {', '.join(d.key for d in t.datasets)}")
    _echo(f"  categories  {', '.join(t.data_categories)}")
    permitted = ", ".join(p.purpose + (f" [{', '.join(p.categories)}]" if p.categories else "") for p in t.permitted)
    _echo(f"  permits     {permitted}")
    if t.prohibited:
        _echo(f"  prohibits   {', '.join(t.prohibited)}")
    if t.expires:
        _echo(f"  expires     {t.expires}")
    if full:
        _echo("  history")
        for h in state.history:
            _echo(f"    v{h.version} {h.recorded_at:%Y-%m-%d %H:%M:%S}Z {h.action:<8} {h.status:<9} {h.actor}: {h.reason or ''}")


@app.command()
def register(
    file: Path = typer.Argument(..., help="An ODCS v3 YAML contract."),
    as_: Optional[str] = typer.Option(None, "--as", help="Who registers it (default: the contract's requester)."),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Validate FILE and record it as a new proposed revision; nothing is stored if it is invalid."""
    from lineage.contracts import registry
    from lineage.contracts.document import load_contract

    settings = _settings()
    doc = load_contract(file, max_bytes=settings.max_contract_bytes)
    with _db(settings) as db, db.connection() as conn:
        state = registry.register(conn, doc, as_)
    _print_state(state, json_)


@app.command()
def approve(
    contract_id: str = typer.Argument(..., metavar="ID"),
    as_: str = typer.Option(..., "--as", help="The approving steward; not the requester nor a consuming job's owner."),
    reason: Optional[str] = typer.Option(None, help="Why (kept in the history)."),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Approve the current revision of contract ID."""
    from lineage.contracts import registry

    with _db() as db, db.connection() as conn:
        state = registry.approve(conn, contract_id, as_, reason)
    _print_state(state, json_)


@app.command()
def revoke(
    contract_id: str = typer.Argument(..., metavar="ID"),
    as_: str = typer.Option(..., "--as", help="Who revokes it."),
    reason: str = typer.Option(..., help="Why (kept in the history, shown by the gate)."),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke contract ID: every later gate check that depends on it is blocked."""
    from lineage.contracts import registry

    with _db() as db, db.connection() as conn:
        state = registry.revoke(conn, contract_id, as_, reason)
    _print_state(state, json_)


@app.command("list")
def list_(json_: bool = typer.Option(False, "--json")) -> None:
    """Every contract with its current status."""
    from lineage.contracts import registry

    with _db() as db, db.connection() as conn:
        states = registry.list_contracts(conn)
    if json_:
        typer.echo(json.dumps([s.as_dict() for s in states], indent=2, default=str))
        return
    if not states:
        typer.echo("no contracts registered (lineage contracts register FILE)")
    for s in states:
        _echo(f"{s.ref:<32} {s.status:<9} {', '.join(d.key for d in s.terms.datasets)}")


@app.command()
def show(contract_id: str = typer.Argument(..., metavar="ID"), json_: bool = typer.Option(False, "--json")) -> None:
    """One contract: terms, status and full history."""
    from lineage.contracts import registry

    with _db() as db, db.connection() as conn:
        state = registry.get(conn, contract_id)
    _print_state(state, json_, full=True)


@app.command()
def expire(json_: bool = typer.Option(False, "--json")) -> None:
    """Mark approved contracts past their expiry date as expired."""
    from lineage.contracts import registry

    with _db() as db, db.connection() as conn:
        ids = registry.expire_due(conn)
    _echo(json.dumps(ids) if json_ else ("expired: " + ", ".join(ids) if ids else "nothing to expire"))


@app.command("compile")
def compile_(
    contracts: Path = typer.Option(Path("contracts"), help="Directory of ODCS YAML contracts."),
    out: Path = typer.Option(Path("expectations"), help="Where the GX suites go."),
    check: bool = typer.Option(False, "--check", help="Only verify the suites in OUT are current; exit 1 if not."),
) -> None:
    """Compile every contract to Great Expectations suites (reproducible, checked in)."""
    from lineage.contracts.compile import write_suites
    from lineage.contracts.document import load_contracts

    paths = write_suites(load_contracts(contracts, max_bytes=_settings().max_contract_bytes), out, check=check)
    if check:
        if paths:
            typer.echo(plain("stale or missing suites: " + ", ".join(str(p) for p in paths)), err=True)
            raise typer.Exit(1)
        _echo(f"suites in {out} are current")
        return
    for p in paths:
        _echo(f"wrote {p}")
