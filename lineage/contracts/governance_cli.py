"""``lineage governance ...``: declared ties and namespace owners, through the server.

Every command calls ``/api/v1/governance`` (:mod:`lineage.contracts.client`) with a token
(``--token`` or ``LINEAGE_TOKEN``): writes need ``admin``, lists ``admin`` or ``auditor``.
The server records the authenticated principal and its credential; entries are never deleted,
only revoked with a reason.

    lineage governance ties add PRINCIPAL ORGANISATION --kind investment [--note TEXT]
    lineage governance ties list [--principal NAME] [--all]
    lineage governance ties revoke ID --reason TEXT
    lineage governance owners add NAMESPACE OWNER
    lineage governance owners list [--namespace NS] [--all]
    lineage governance owners revoke ID --reason TEXT
"""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from lineage.console import plain
from lineage.contracts.cli import TOKEN, _when

app = typer.Typer(help="Declared interests and namespace owners: what separation of duties checks (admin).", no_args_is_help=True)
ties = typer.Typer(help="Principals' declared ties to organisations (investment, employment, family, other).", no_args_is_help=True)
owners = typer.Typer(help="Owners of job namespaces; an owner of a consuming job may not approve a contract.", no_args_is_help=True)
app.add_typer(ties, name="ties")
app.add_typer(owners, name="owners")


def _echo(text: str) -> None:
    typer.echo(plain(text))


def _revoked(entry: dict[str, Any]) -> str:
    r = entry.get("revoked")
    return f"  REVOKED {_when(r['at'])} by {r['by']}: {r['reason']}" if r else ""


def _tie(t: dict[str, Any]) -> None:
    note = f" ({t['note']})" if t.get("note") else ""
    _echo(f"#{t['id']:<5} {t['principal']}  {t['kind']} tie to  {t['organisation']}{note}  — recorded {_when(t['recordedAt'])} by {t['recordedBy']}{_revoked(t)}")


def _owner(o: dict[str, Any]) -> None:
    _echo(f"#{o['id']:<5} {o['namespace']}  owned by  {o['owner']}  — recorded {_when(o['recordedAt'])} by {o['recordedBy']}{_revoked(o)}")


def _out(data: Any, as_json: bool, show) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        show(data)


@ties.command("add")
def add_tie(
    principal: str = typer.Argument(..., help="The principal's name, e.g. dpo@example.com."),
    organisation: str = typer.Argument(..., help="The organisation, as contracts name it (provider or requesterOrganization)."),
    kind: str = typer.Option(..., help="investment, employment, family or other."),
    note: Optional[str] = typer.Option(None, help="Free text kept with the declaration."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Declare that PRINCIPAL has a tie to ORGANISATION: they may not approve its contracts."""
    from lineage.contracts.client import call

    body = {"principal": principal, "organisation": organisation, "kind": kind, **({"note": note} if note else {})}
    _out(call("POST", "/api/v1/governance/ties", token, json=body), json_, _tie)


@ties.command("list")
def list_ties(
    principal: Optional[str] = typer.Option(None, help="Only this principal's ties."),
    all_: bool = typer.Option(False, "--all", help="Include revoked ties."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Declared ties in force (or all, with --all)."""
    from lineage.contracts.client import call

    params = {"includeRevoked": "true" if all_ else "false", **({"principal": principal} if principal else {})}
    data = call("GET", "/api/v1/governance/ties", token, params=params)
    _out(data["ties"], json_, lambda rows: [_tie(t) for t in rows] or typer.echo("no declared ties"))


@ties.command("revoke")
def revoke_tie(
    tie_id: int = typer.Argument(..., metavar="ID", min=1),
    reason: str = typer.Option(..., help="Why the tie no longer holds (kept in the record)."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke declared tie ID; it stays in the record with its revocation."""
    from lineage.contracts.client import call

    _out(call("POST", f"/api/v1/governance/ties/{tie_id}/revoke", token, json={"reason": reason}), json_, _tie)


@owners.command("add")
def add_owner(
    namespace: str = typer.Argument(..., help="An OpenLineage job namespace."),
    owner: str = typer.Argument(..., help="The owning principal's name."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Register OWNER as an owner of the jobs in NAMESPACE."""
    from lineage.contracts.client import call

    _out(call("POST", "/api/v1/governance/owners", token, json={"namespace": namespace, "owner": owner}), json_, _owner)


@owners.command("list")
def list_owners(
    namespace: Optional[str] = typer.Option(None, help="Only this namespace."),
    all_: bool = typer.Option(False, "--all", help="Include revoked entries."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Registered namespace owners in force (or all, with --all)."""
    from lineage.contracts.client import call

    params = {"includeRevoked": "true" if all_ else "false", **({"namespace": namespace} if namespace else {})}
    data = call("GET", "/api/v1/governance/owners", token, params=params)
    _out(data["owners"], json_, lambda rows: [_owner(o) for o in rows] or typer.echo("no namespace owners registered"))


@owners.command("revoke")
def revoke_owner(
    owner_id: int = typer.Argument(..., metavar="ID", min=1),
    reason: str = typer.Option(..., help="Why (kept in the record)."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Revoke namespace-owner entry ID; it stays in the record with its revocation."""
    from lineage.contracts.client import call

    _out(call("POST", f"/api/v1/governance/owners/{owner_id}/revoke", token, json={"reason": reason}), json_, _owner)
