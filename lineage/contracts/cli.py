"""``lineage contracts ...``: register, approve, revoke, expire, list, show, compile.

Writes (register, approve, revoke, expire) go through the server's HTTP API
(:mod:`lineage.contracts.client`) with a token (``--token`` or ``LINEAGE_TOKEN``), so the actor
is the principal the server authenticates — there is no ``--as``.  ``register`` still parses
and checks the file locally first, so a bad document is refused with its file and line before
anything is sent.  Reads (list, show, compile) use the store configured by ``LINEAGE_*``
settings directly (migrated on first use).

Errors are :class:`~lineage.errors.LineageError`s; the top-level ``lineage`` command prints them
as one line and exits 2.  Everything a document or a user supplied (ids, names, actors, reasons)
is printed through :func:`lineage.console.plain`, so it cannot drive the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

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


TOKEN = typer.Option(
    None, "--token", envvar="LINEAGE_TOKEN", show_envvar=True,
    help="API token or bearer token of the principal acting (prefer the LINEAGE_TOKEN variable).",
)


def _when(stamp: str | None) -> str:
    """``2026-11-20T10:00:00.000000Z`` as ``2026-11-20 10:00Z``."""
    return f"{stamp[:10]} {stamp[11:16]}Z" if stamp else "?"


def _print_state(state: dict[str, Any], as_json: bool, full: bool = False) -> None:
    """Print a contract state as the API renders it (``ContractState.as_dict``)."""
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
        return
    t = state["terms"]
    _echo(f"{state['id']}@{state['version']}  {state['status']}  (revision {state['revision']}, {state.get('action', '')} by {state['changedBy']}, {_when(state['changedAt'])})")
    if state.get("action") == "endorse":
        _echo("  one steward's approval of the two its special categories need: one more independent steward must approve it")
    requester = t["requester"] + (f" ({t['requester_organization']})" if t.get("requester_organization") else "")
    _echo(f"  provider    {t['provider']}    requester {requester}    legal basis {t['legal_basis']}")
    _echo(f"  datasets    {', '.join(d['namespace'] + ':' + d['name'] for d in t['datasets'])}")
    _echo(f"  categories  {', '.join(t['data_categories'])}")
    permitted = ", ".join(p["purpose"] + (f" [{', '.join(p['categories'])}]" if p["categories"] else "") for p in t["permitted"])
    _echo(f"  permits     {permitted}")
    if t["prohibited"]:
        _echo(f"  prohibits   {', '.join(t['prohibited'])}")
    if t["expires"]:
        _echo(f"  expires     {t['expires']}")
    if full:
        _echo("  history")
        for h in state["history"]:
            via = f" [{h['credential']}]" if h.get("credential") else ""
            _echo(f"    v{h['version']} {h['recorded_at'][:19].replace('T', ' ')}Z {h['action']:<8} {h['status']:<9} {h['actor']}{via}: {h['reason'] or ''}")


@app.command()
def register(
    file: Path = typer.Argument(..., help="An ODCS v3 YAML contract."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Validate FILE and record it as a new proposed revision, registered by you (role `requester`)."""
    from lineage.contracts.client import call
    from lineage.contracts.document import load_contract

    settings = _settings()
    load_contract(file, max_bytes=settings.max_contract_bytes)  # refuse a bad file with its line, before sending
    body = file.read_bytes()
    state = call("POST", "/api/v1/contracts", token, content=body, settings=settings,
                 headers={"content-type": "application/yaml", "x-contract-file": quote(str(file), safe="/:._-")})
    _print_state(state, json_)


@app.command()
def approve(
    contract_id: str = typer.Argument(..., metavar="ID"),
    reason: Optional[str] = typer.Option(None, help="Why (kept in the history)."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Approve the current revision of contract ID as an independent steward (role `steward`).

    You may not be its requester, whoever registered it, a registered owner of a job that
    consumes its data, or tied to its provider or requester organisation.  A contract holding
    special categories of data needs two different stewards: the first approval leaves it proposed.
    """
    from lineage.contracts.client import call

    state = call("POST", f"/api/v1/contracts/{quote(contract_id, safe='')}/approve", token, json={"reason": reason} if reason else {})
    _print_state(state, json_)


@app.command()
def revoke(
    contract_id: str = typer.Argument(..., metavar="ID"),
    reason: str = typer.Option(..., help="Why (kept in the history, shown by the gate)."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke contract ID (role `steward`): every later gate check that depends on it is blocked."""
    from lineage.contracts.client import call

    state = call("POST", f"/api/v1/contracts/{quote(contract_id, safe='')}/revoke", token, json={"reason": reason})
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
    _print_state(state.as_dict(full=True), json_, full=True)


@app.command()
def expire(token: Optional[str] = TOKEN, json_: bool = typer.Option(False, "--json")) -> None:
    """Mark approved contracts past their expiry date as expired (role `steward`)."""
    from lineage.contracts.client import call

    ids = call("POST", "/api/v1/contracts/expire", token)["expired"]
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
