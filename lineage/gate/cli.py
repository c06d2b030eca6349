"""``lineage gate ...``: ask the gate, and read its decision log.

``check`` prints the decision and exits 0 when the run may go ahead, 1 when it is blocked
(including when the store cannot be reached: the gate fails closed).  ``--data DATASET=FILE``
validates a CSV or Parquet file as that input's data with the compiled suites.  Names and
reasons are printed through :mod:`lineage.console`, so they cannot drive the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from lineage.console import plain, plain_lines

app = typer.Typer(help="The consent gate: may a training job read these inputs for this purpose?", no_args_is_help=True)


def _read(path: Path):
    import pandas as pd

    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@app.command()
def check(
    job: str = typer.Option(..., help="The job asking, as NAMESPACE:NAME."),
    purpose: str = typer.Option(..., help="Fides data-use key, e.g. train_ai_system."),
    input_: List[str] = typer.Option(..., "--input", help="An input dataset, dataset:NAMESPACE:NAME (repeat)."),
    data: Optional[List[str]] = typer.Option(None, "--data", help="DATASET=FILE: validate this CSV/Parquet as the input's data."),
    json_: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Decide, print the decision, exit 0 if allowed and 1 if blocked."""
    from lineage.config import Settings
    from lineage.gate.service import check_gate

    frames = {}
    for item in data or []:
        key, sep, path = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"`{item}`: expected DATASET=FILE", param_hint="--data")
        frames[key] = _read(Path(path))
    decision = check_gate(Settings(), job, purpose, input_, frames or None)
    if json_:
        typer.echo(json.dumps(decision.as_dict(), indent=2, default=str))
    else:
        typer.echo(plain_lines(decision.render()))
    raise typer.Exit(0 if decision.allowed else 1)


@app.command()
def log(
    job: Optional[str] = typer.Option(None, help="Only this job (NAMESPACE:NAME)."),
    limit: int = typer.Option(20, min=1, max=1000),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Only decisions logged by this ISO 8601 time (UTC if no offset)."),
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Recent gate decisions, newest first."""
    from lineage.config import Settings
    from lineage.gate.service import recent
    from lineage.store.db import open_database

    with open_database(Settings(), migrate=True) as db, db.connection() as conn:
        from lineage.times import parse_as_of

        rows = recent(conn, job, limit, parse_as_of(as_of) if as_of else None)
    if json_:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for r in rows:
        verdict = "ALLOWED" if r["allowed"] else "BLOCKED"
        typer.echo(plain(f"{r['decidedAt']} {verdict:<7} {r['job']} for {r['purpose']}: {len(r['reasons'])} reason(s) ({r['decisionId']})"))
