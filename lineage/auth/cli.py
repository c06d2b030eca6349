"""``lineage tokens ...`` and ``lineage grants ...``: identity administration from the shell.

These are admin operations, and they go through the HTTP API like any other client: the
server authenticates the caller and records it as the actor.  The token sent is ``--token``,
else ``LINEAGE_TOKEN``, else the local admin token (``LINEAGE_HOME/admin-token``, written by
the first ``lineage serve`` on the embedded store; see :mod:`lineage.auth.local`).

One exception: ``lineage tokens create NAME --bootstrap`` writes straight into the store, with
the database credentials, to create the first admin token on a shared PostgreSQL before any
token exists.  Whoever holds the database credentials can do this; nobody else can.

``tokens create`` prints the token alone on stdout (``TOKEN=$(lineage tokens create ...)``),
once: it is stored only as a hash and cannot be shown again.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, List, Optional

import typer

from lineage.console import plain

tokens_app = typer.Typer(help="API tokens for services (admin).", no_args_is_help=True)
grants_app = typer.Typer(help="Roles for people who sign in through OIDC or a proxy (admin).", no_args_is_help=True)

TOKEN = typer.Option(None, "--token", help="API token to authenticate with (LINEAGE_TOKEN; default: LINEAGE_HOME/admin-token).")
URL = typer.Option(None, "--url", help="Server (LINEAGE_URL, default http://127.0.0.1:5000).")


def _settings(url: str | None = None):
    from lineage.config import Settings

    return Settings(**({"url": url} if url else {}))


def _call(method: str, path: str, *, token: str | None, url: str | None, body: Any = None, params: Any = None) -> Any:
    """One authenticated request; a refusal becomes a :class:`LineageError` with the server's message."""
    import httpx

    from lineage.auth.local import auth_headers
    from lineage.config import api_url
    from lineage.errors import LineageError

    settings = _settings(url)
    target = api_url(settings.server_url, path)
    headers = auth_headers(settings, token)
    if not headers:
        raise LineageError("no token to authenticate with: pass --token, set LINEAGE_TOKEN, or run `lineage serve` once on this machine to create LINEAGE_HOME/admin-token")
    try:
        r = httpx.request(method, target, json=body, params=params, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise LineageError(f"cannot reach the lineage server at {settings.server_url} ({type(exc).__name__}); start it with `lineage serve`") from None
    if r.status_code >= 400:
        from lineage.contracts.client import refusal

        try:
            message = r.json().get("message", r.text)
        except ValueError:
            message = r.text[:300]
        if r.status_code in (401, 403):
            raise LineageError(refusal(r.status_code, message, sent=True))
        raise LineageError(f"the server refused ({r.status_code}): {message}")
    return r.json()


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    from lineage.errors import BadRequest

    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        t = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("--expires", f"`{text}` is not an ISO date (2027-01-31) or date-time") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _show_token(row: dict) -> str:
    scope = ",".join(row["namespaces"]) if row.get("namespaces") else "any namespace"
    state = f"revoked {row['revokedAt']} by {row['revokedBy']}" if row.get("revokedAt") else "live"
    expires = f"expires {row['expiresAt']}" if row.get("expiresAt") else "no expiry"
    return f"{row['name']:24} {row['principal']:28} {','.join(row['roles']):32} {scope:20} {expires:36} {state}"


@tokens_app.command("create")
def create(
    name: str = typer.Argument(..., help="A unique name, e.g. airflow-prod."),
    principal: str = typer.Option(..., "--principal", help="Who the token acts as."),
    role: List[str] = typer.Option(..., "--role", help="A role (repeat for several): emitter, viewer, requester, steward, auditor, admin."),
    namespace: Optional[List[str]] = typer.Option(None, "--namespace", help="Limit an emitter to this job namespace (repeatable)."),
    expires: Optional[str] = typer.Option(None, "--expires", help="Expiry, ISO date or date-time (UTC if no offset)."),
    bootstrap: bool = typer.Option(False, "--bootstrap", help="Write straight into the store with the database credentials (the first admin)."),
    token: Optional[str] = TOKEN,
    url: Optional[str] = URL,
) -> None:
    """Create an API token and print it once."""
    when = _expiry(expires)
    if bootstrap:
        from lineage.auth import tokens
        from lineage.store import open_database

        with open_database(_settings(), migrate=True) as db, db.connection() as conn:
            row, secret = tokens.create(conn, name=name, principal=principal, roles=role, namespaces=namespace or None,
                                        expires_at=when, created_by="bootstrap (database credentials)")
        info = row.as_dict()
    else:
        body = {"name": name, "principal": principal, "roles": role, "namespaces": namespace or None,
                "expiresAt": when.isoformat() if when else None}
        info = _call("POST", "/api/v1/auth/tokens", token=token, url=url, body=body)
        secret = info.pop("token")
    typer.echo(plain(f"created token `{info['name']}` for {info['principal']} ({', '.join(info['roles'])}); "
                     "it is shown once, store it now:"), err=True)
    typer.echo(secret)


@tokens_app.command("list")
def list_(json_: bool = typer.Option(False, "--json"), token: Optional[str] = TOKEN, url: Optional[str] = URL) -> None:
    """Every token (live and revoked), without secrets."""
    import json

    rows = _call("GET", "/api/v1/auth/tokens", token=token, url=url)["tokens"]
    if json_:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(plain(_show_token(row)))


@tokens_app.command("revoke")
def revoke(name: str = typer.Argument(...), token: Optional[str] = TOKEN, url: Optional[str] = URL) -> None:
    """Revoke a token: it authenticates nobody from now on."""
    from urllib.parse import quote

    row = _call("POST", f"/api/v1/auth/tokens/{quote(name, safe='')}/revoke", token=token, url=url)
    typer.echo(plain(f"revoked token `{row['name']}` ({row['revokedAt']}, by {row['revokedBy']})"))


@grants_app.command("add")
def grant_add(principal: str = typer.Argument(...), role: str = typer.Argument(...), reason: Optional[str] = typer.Option(None),
              token: Optional[str] = TOKEN, url: Optional[str] = URL) -> None:
    """Grant ROLE to the person PRINCIPAL (as their identity provider names them)."""
    g = _call("POST", "/api/v1/auth/grants", token=token, url=url, body={"principal": principal, "role": role, "reason": reason})
    typer.echo(plain(f"granted `{g['role']}` to {g['principal']} (by {g['grantedBy']})"))


@grants_app.command("revoke")
def grant_revoke(principal: str = typer.Argument(...), role: str = typer.Argument(...), reason: Optional[str] = typer.Option(None),
                 token: Optional[str] = TOKEN, url: Optional[str] = URL) -> None:
    """Take ROLE away from PRINCIPAL."""
    r = _call("POST", "/api/v1/auth/grants/revoke", token=token, url=url, body={"principal": principal, "role": role, "reason": reason})
    typer.echo(plain(f"{r['principal']} now holds: {', '.join(r['roles']) or 'no role'}"))


@grants_app.command("list")
def grant_list(principal: Optional[str] = typer.Option(None, "--principal"), json_: bool = typer.Option(False, "--json"),
               token: Optional[str] = TOKEN, url: Optional[str] = URL) -> None:
    """Roles held now."""
    import json

    rows = _call("GET", "/api/v1/auth/grants", token=token, url=url, params={"principal": principal} if principal else None)["grants"]
    if json_:
        typer.echo(json.dumps(rows, indent=2))
        return
    for g in rows:
        typer.echo(plain(f"{g['principal']:32} {g['role']:10} granted {g['grantedAt']} by {g['grantedBy']}"))


def whoami(token: Optional[str] = TOKEN, url: Optional[str] = URL) -> None:
    """Who the server takes you for, and your roles."""
    me = _call("GET", "/api/v1/auth/whoami", token=token, url=url)
    scope = f"; namespaces: {', '.join(me['namespaces'])}" if me.get("namespaces") else ""
    typer.echo(plain(f"{me['name']} ({me['credential']}): {', '.join(me['roles']) or 'no role'}{scope}"))
