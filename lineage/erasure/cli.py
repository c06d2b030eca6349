"""``lineage impact``, ``lineage erase`` and ``lineage erasure status|list``.

``impact`` reads the store directly (like ``upstream``); ``erase`` and ``erasure`` go through
the server's HTTP API with a token (``--token`` or ``LINEAGE_TOKEN``), so the steward who
erases is the principal the server authenticates.  Everything printed that a user or an
event supplied goes through :func:`lineage.console.plain`.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from lineage.console import plain

app = typer.Typer(help="Erasures: what must go with a source, and what has gone.", no_args_is_help=True)

TOKEN = typer.Option(
    None, "--token", envvar="LINEAGE_TOKEN", show_envvar=True,
    help="API token or bearer token of the principal acting (prefer the LINEAGE_TOKEN variable).",
)


def register(root: typer.Typer) -> None:
    """Mount ``impact``, ``erase`` and the ``erasure`` group on the top-level app (one line there)."""
    root.command("impact")(impact)
    root.command("erase")(erase)
    root.add_typer(app, name="erasure")


def _echo(text: str) -> None:
    typer.echo(plain(text))


def _print_status(st: dict[str, Any]) -> None:
    c = st["counts"]
    _echo(f"erasure #{st['id']} of {st['source']}: {st['state']} ({c['deleted']} of {c['items']} deleted, "
          f"{c['outstanding']} outstanding{', ' + str(c['recreated']) + ' re-created' if c['recreated'] else ''})")
    _echo(f"  requested by {st['requestedBy']} at {st['recordedAt']}: {st['reason']}")
    _echo(f"  contracts revoked: {', '.join(st['revokedContracts']) or 'none'}")
    for it in st["items"]:
        mark = "done" if it["state"] == "deleted" else "TODO"
        _echo(f"  [{mark}] #{it['id']} {it['kind']:<7} {it['dataset']}  {it['location'] or '(no known location)'}")
        for r in it["recreated"]:
            _echo(f"         RE-CREATED by run {r['runId']} ({r['detail'].get('job', '')}) at {r['recordedAt']}")


def erase(
    source: str = typer.Argument(..., metavar="SOURCE", help="The source dataset: dataset:NAMESPACE:NAME or NAMESPACE:NAME."),
    reason: str = typer.Option(..., help="Why (kept on the manifest and in each contract's revocation)."),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json", help="Print the manifest and its status as JSON."),
) -> None:
    """Erase SOURCE (role `steward`): revoke every contract covering it and write the manifest of
    every dataset, model and artifact built from it.  Run the `erase_source` DAG to delete them."""
    from lineage.contracts.client import call

    st = call("POST", "/api/v1/erasures", token, json={"source": source, "reason": reason})
    if json_:
        typer.echo(json.dumps(st, indent=2, default=str))
        return
    _echo(st["summary"])
    _echo(f"\n`lineage erasure status {st['id']}` shows what is done and what is outstanding.")


@app.command()
def status(
    erasure_id: int = typer.Argument(..., metavar="ID", min=1),
    token: Optional[str] = TOKEN,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Each item of erasure ID: deleted (done) or outstanding, and any re-creation since."""
    from lineage.contracts.client import call

    st = call("GET", f"/api/v1/erasures/{erasure_id}", token)
    if json_:
        typer.echo(json.dumps(st, indent=2, default=str))
        return
    _print_status(st)


@app.command("list")
def list_(token: Optional[str] = TOKEN, json_: bool = typer.Option(False, "--json")) -> None:
    """Every erasure, newest first, with its counts."""
    from lineage.contracts.client import call

    found = call("GET", "/api/v1/erasures", token)
    if json_:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    for e in found["erasures"]:
        c = e["counts"]
        _echo(f"#{e['id']}  {e['source']}  {c['deleted']}/{c['items']} deleted  {e['recordedAt']}  {e['requestedBy']}: {e['reason']}")


def impact(
    node: str = typer.Argument(..., metavar="NODE", help="dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Answer from what had been recorded by this ISO 8601 time (UTC if no offset)."),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Everything built from NODE at any depth: datasets, jobs, runs and models (with their training runs).
    Exit status 3: derivation is behind, so the answer may miss recently acknowledged events."""
    from lineage.config import Settings
    from lineage.events.ids import parse_node_id
    from lineage.store import open_database
    from lineage.store.derive import fresh, incomplete_exit
    from lineage.store.impact import contracts_as_of, impact as find

    from lineage.times import parse_as_of

    when = parse_as_of(as_of) if as_of else None
    node_ = parse_node_id(node, "NODE")
    with open_database(Settings(), migrate=True) as db:
        complete = fresh(db)  # sees every event acknowledged before it, unless derivation is behind
        with db.connection() as conn:
            answer = find(conn, node_, when).as_dict()
            if node_.type == "dataset":
                answer["contracts"] = contracts_as_of(conn, node_, when)
    _print_impact(answer, json_)
    if not complete:
        incomplete_exit("impact answer")


def _print_impact(answer: dict, json_: bool) -> None:
    if json_:
        typer.echo(json.dumps(answer, indent=2, default=str))
        return
    c = answer["counts"]
    _echo(f"impact of {answer['nodeId']}" + (f" as of {answer['asOf']}" if answer["asOf"] else ""))
    _echo(f"  {c['datasets']} dataset(s), {c['jobs']} job(s), {c['runs']} run(s), {c['models']} model(s)")
    for s in answer.get("contracts", []):
        _echo(f"  contract {s['ref']}: {s['status']}")
    for kind in ("datasets", "jobs"):
        if answer[kind]:
            _echo(f"  {kind}:")
            for x in answer[kind]:
                _echo(f"    {x}")
    for m in answer["models"]:
        _echo(f"  model {m['id']} trained by {', '.join(m['trainingRuns']) or '(no run recorded)'}")
