"""The ``lineage`` command: thin commands over the same services the HTTP API uses.

Every deliberate error is printed as one line (``error: ...``) with exit code 2; nothing
prints a stack trace.  Heavy imports happen inside commands so ``lineage --help`` is instant.

Names come from events anyone can send: every one printed goes through
:func:`lineage.console.safe` (rich markup) or :func:`lineage.console.plain` (plain echo), and
every error message through the settings' password masking
(:func:`lineage.config.redact_text`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from lineage.console import plain, safe

app = typer.Typer(
    help="OpenLineage store, source contracts and a consent gate for ML training.\n\n"
    "Uses the embedded PostgreSQL under LINEAGE_HOME (default ~/.lineage) unless LINEAGE_DATABASE_URL is set.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings(**overrides):
    from lineage.config import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Interface to bind (LINEAGE_HOST, default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (LINEAGE_PORT, default 5000)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each with its own connection pool)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the HTTP API (OpenLineage ingest, lineage, Marquez-compatible reads); migrates the store first."""
    import signal

    import uvicorn

    from lineage.api.app import create_app
    from lineage.api.security import SERVE_OPTIONS

    # uvicorn re-raises the signal that stopped it once it has shut down; with the default
    # SIGTERM action that would kill the process before its exit handlers run, leaving the
    # embedded PostgreSQL started for it running.  Exit normally instead.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = _settings(host=host, port=port)
    from lineage.auth.local import prepare_serve

    prepare_serve(settings)  # refuses a non-loopback address without authentication; local admin token
    if workers > 1:
        # Each worker builds its app from the environment; prepare_serve migrated the store once.
        uvicorn.run("lineage.api.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level=log_level, **SERVE_OPTIONS)
    else:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level, **SERVE_OPTIONS)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply pending schema migrations, as the owner database role (LINEAGE_MIGRATION_DATABASE_URL
    when LINEAGE_DATABASE_URL is set; the embedded server's owner role otherwise)."""
    from lineage.store.db import resolve_migration_url
    from lineage.store.migrate import current, upgrade
    from lineage.store.roles import Roles

    settings = _settings()
    url = resolve_migration_url(settings)
    if url is None:
        _fail("LINEAGE_MIGRATION_DATABASE_URL is unset: set it to the owner database role's URL to migrate (deploy/README.md)")
    upgrade(url, revision, roles=Roles.from_settings(settings))
    typer.echo(f"store at revision {current(url)}")


@app.command()
def ingest(
    file: Path = typer.Argument(..., help="NDJSON (one event per line) or a JSON array of OpenLineage events. `-` reads stdin."),
    batch_size: int = typer.Option(1000, min=1, help="Events per request."),
    url: Optional[str] = typer.Option(None, help="Server to send to (LINEAGE_URL, default http://127.0.0.1:5000)."),
    direct: bool = typer.Option(False, help="Write straight into the store instead of through a server."),
    token: Optional[str] = typer.Option(None, "--token", help="API token with `emitter` (LINEAGE_TOKEN; default: LINEAGE_HOME/admin-token)."),
) -> None:
    """Send events to the store in batches, then summarise stored / duplicate / rejected."""
    from lineage.ingest_file import ingest_file

    summary = ingest_file(file, _settings(url=url, token=token), batch_size=batch_size, direct=direct)
    if summary.rejected:
        raise typer.Exit(1)


def _graph_command(direction: str, node: str, depth: int, as_json: bool, as_table: bool = False) -> None:
    from lineage.events import parse_node_id
    from lineage.store import graph, open_database
    from lineage.store.derive import fresh, incomplete_exit

    node_id = parse_node_id(node, field="NODE")
    with open_database(_settings(), migrate=True) as db:
        complete = fresh(db)  # sees every event acknowledged before it, unless derivation is behind
        with db.connection() as conn:
            g = graph.walk(conn, node_id, direction, depth)  # type: ignore[arg-type]
    _print_graph(g, node, direction, depth, as_json, as_table)
    if not complete:
        incomplete_exit(f"{direction} answer")


def _print_graph(g, node: str, direction: str, depth: int, as_json: bool, as_table: bool) -> None:
    import json

    if as_json:
        typer.echo(json.dumps(g.as_dict(), indent=2))
        return
    from rich.console import Console

    if as_table:
        from rich.table import Table

        table = Table(title=f"{direction} of {safe(node)} (depth {depth}): {len(g.nodes) - 1} nodes")
        for col in ("from", "to"):
            table.add_column(col, overflow="fold")
        for e in g.edges:
            table.add_row(safe(e["origin"]), safe(e["destination"]))  # cells are rendered as markup
        Console().print(table, highlight=False)
        return
    Console().print(render_tree(g, direction), soft_wrap=True, highlight=False)


def render_tree(g, direction: str):
    """The walk as a tree from its start node; a node reached twice is shown once, then marked."""
    from rich.tree import Tree

    nxt: dict[str, list[str]] = {}
    for e in g.edges:
        a, b = (e["origin"], e["destination"]) if direction == "downstream" else (e["destination"], e["origin"])
        nxt.setdefault(a, []).append(b)
    root = Tree(f"[bold]{safe(g.start)}[/bold]  ({direction}, {len(g.nodes) - 1} nodes)")
    seen = {g.start}

    def grow(branch, node: str) -> None:
        for child in sorted(nxt.get(node, [])):
            label = safe(child) if child.startswith("dataset:") else f"[dim]{safe(child)}[/dim]"
            if child in seen:
                branch.add(f"{label} [dim](see above)[/dim]")
                continue
            seen.add(child)
            grow(branch.add(label), child)

    grow(root, g.start)
    return root


@app.command()
def upstream(
    node: str = typer.Argument(..., help="dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"),
    depth: int = typer.Option(20, min=0, max=100, help="How many jobs away to walk."),
    json_: bool = typer.Option(False, "--json", help="Print nodes and edges as JSON."),
    table: bool = typer.Option(False, "--table", help="Print the edges as a table instead of a tree."),
) -> None:
    """What NODE was built from.  Exit status 3: derivation is behind, the answer may miss recent events."""
    _graph_command("upstream", node, depth, json_, table)


@app.command()
def downstream(
    node: str = typer.Argument(..., help="dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"),
    depth: int = typer.Option(20, min=0, max=100, help="How many jobs away to walk."),
    json_: bool = typer.Option(False, "--json", help="Print nodes and edges as JSON."),
    table: bool = typer.Option(False, "--table", help="Print the edges as a table instead of a tree."),
) -> None:
    """What was built from NODE.  Exit status 3: derivation is behind, the answer may miss recent events."""
    _graph_command("downstream", node, depth, json_, table)


def _mount_subcommands() -> None:
    from lineage.audit.cli import app as audit_app
    from lineage.auth.cli import grants_app, tokens_app, whoami
    from lineage.contracts.cli import app as contracts_app
    from lineage.contracts.governance_cli import app as governance_app
    from lineage.gate.cli import app as gate_app
    from lineage.maintain.cli import app as maintain_app
    from lineage.airflow.spool_cli import app as spool_app
    from lineage.store.derive_cli import derive

    app.add_typer(contracts_app, name="contracts")
    app.add_typer(governance_app, name="governance")
    app.add_typer(gate_app, name="gate")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(grants_app, name="grants")
    app.add_typer(spool_app, name="spool")
    app.add_typer(audit_app, name="audit")
    app.command("derive")(derive)
    app.add_typer(maintain_app, name="maintain")
    app.command("whoami")(whoami)
    from lineage.erasure.cli import register as register_erasure  # impact, erase, erasure ...
    register_erasure(app)


def main() -> None:
    from pydantic import ValidationError

    from lineage.errors import LineageError

    _mount_subcommands()
    try:
        app()
    except ValidationError as exc:  # settings from the environment
        for err in exc.errors():
            field = "LINEAGE_" + "_".join(str(p) for p in err["loc"]).upper()
            _error(f"{field}: {err['msg'].removeprefix('Value error, ')}")
        sys.exit(2)
    except LineageError as exc:
        _error(exc.message)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line, masked; a raw traceback could quote the password
        _error(f"unexpected {type(exc).__name__}: {exc} (this is a bug in lineage; please report it)")
        sys.exit(70)


def _error(message: str) -> None:
    """Print one error line with credentials masked and control characters escaped."""
    from lineage.config import redact_text

    typer.echo(f"error: {plain(redact_text(message, *_configured_urls()))}", err=True)


def _configured_urls() -> list[str]:
    """The configured database URLs (application and migration), to mask their passwords
    wherever they appear."""
    import os

    try:
        from lineage.config import Settings

        settings = Settings()
        return [u.get_secret_value() for u in (settings.database_url, settings.migration_database_url) if u]
    except Exception:  # the settings themselves are invalid: the environment is all there is
        return [u for u in (os.environ.get("LINEAGE_DATABASE_URL"), os.environ.get("LINEAGE_MIGRATION_DATABASE_URL")) if u]


if __name__ == "__main__":
    main()
