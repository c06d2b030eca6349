"""Point Airflow at this project, and run its DAGs in-process with ``dag.test()``.

Two halves:

* :func:`airflow_env` builds the environment that configures Airflow: ``AIRFLOW_HOME`` under
  ``LINEAGE_HOME/airflow`` with a SQLite metadata database, the project's ``dags/`` folder, and
  the OpenLineage provider sending through :class:`~lineage.airflow.transport.SpoolingTransport`
  with operator source code left out of events.  Airflow reads its configuration when it is
  first imported, so this environment is given to a *new* process.
* ``python -m lineage.airflow.runner DAG_ID...`` runs DAGs that way.  Typed in a shell, it
  builds that environment from the lineage settings (``LINEAGE_HOME``, ``LINEAGE_URL``,
  ``LINEAGE_TOKEN``), runs itself in a configured child, and prints the JSON summary (state,
  seconds, task states, gate decisions); Airflow's log goes to ``LINEAGE_HOME/logs/runner.log``.
  As that child (:func:`run`) it migrates the metadata database once, loads the DAG files, runs
  each DAG with ``dag.test()`` in order, and writes the summary to ``--results``.  The demo, the
  end-to-end test and the overhead benchmark all use it.

Workers get the lineage server's URL and an API token (``LINEAGE_URL``, ``LINEAGE_TOKEN``: the
transport's emitter token, which the gate may use too) and never the database's credentials:
:func:`run` strips ``LINEAGE_DATABASE_URL`` and ``LINEAGE_MIGRATION_DATABASE_URL`` from what the
child inherits.  The example pipeline's files live under ``LINEAGE_EXAMPLE_DATA`` (``data_root``,
by default the lineage home), set here explicitly.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lineage.config import Settings

NAMESPACE = "ml-pipeline"
NO_SOURCE_CODE = [{"scope": {}, "controls": {"include_source_code": False}}]


def default_dags_folder() -> Path:
    return Path(__file__).resolve().parents[2] / "dags"


def transport_config(settings: Settings, server_url: str | None = None) -> dict[str, Any]:
    config = {
        "type": "lineage.airflow.transport.SpoolingTransport",
        "url": server_url or settings.server_url,
        "spool_dir": str(settings.spool_dir),
        "asynchronous": True,  # with EXECUTE_IN_THREAD below; flushed or spooled at process exit
    }
    if settings.token is not None:  # the emitter token the transport sends as `Authorization: Bearer`
        config["api_key"] = settings.token.get_secret_value()
    return config


def airflow_env(
    settings: Settings,
    *,
    server_url: str | None = None,
    lineage: bool = True,
    dags_folder: Path | None = None,
    namespace: str = NAMESPACE,
    airflow_home: Path | None = None,
    data_root: Path | None = None,
) -> dict[str, str]:
    """Environment variables that configure Airflow for this project (merge into ``os.environ``)."""
    home = airflow_home or settings.home / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or default_dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": namespace,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport_config(settings, server_url)),
        "AIRFLOW__OPENLINEAGE__EMISSION_POLICY": json.dumps(NO_SOURCE_CODE),
        "AIRFLOW__OPENLINEAGE__DISABLED": "false" if lineage else "true",
        # Emit from a bounded thread instead of a fork per event: the client (and its HTTP
        # keep-alive connection) is built once per task process, not once per event.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "true",
        "LINEAGE_HOME": str(settings.home),
        # The gate operator asks the server: its URL and a token with a role in GATE_CHECK.
        "LINEAGE_URL": server_url or settings.server_url,
        "LINEAGE_EXAMPLE_DATA": str(data_root or settings.home),
    }
    if settings.token is not None:
        env["LINEAGE_TOKEN"] = settings.token.get_secret_value()
    return env


#: What an Airflow process must never inherit: the lineage database's credentials.
DATABASE_VARIABLES = ("LINEAGE_DATABASE_URL", "LINEAGE_MIGRATION_DATABASE_URL")
CHILD_MARK = "LINEAGE_AIRFLOW_RUNNER"


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``os.environ`` overlaid with ``env``, minus the database's credentials."""
    merged = {**os.environ, **env}
    for name in DATABASE_VARIABLES:
        merged.pop(name, None)
    return merged


def ensure_migrated(env: dict[str, str], log: Any = None) -> None:
    """Run ``airflow db migrate`` once per Airflow home (a stamp file remembers it)."""
    home = Path(env["AIRFLOW_HOME"])
    stamp = home / ".lineage-migrated"
    if stamp.exists() and (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=child_env(env),
        check=True,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    stamp.write_text("migrated\n")


def run(
    dag_ids: list[str],
    env: dict[str, str],
    *,
    log_path: Path,
    repeat: int = 1,
    warmup: bool = False,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run DAGs in a fresh process configured by ``env``; return its JSON summary."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    results = log_path.with_suffix(".json")
    args = [sys.executable, "-m", "lineage.airflow.runner", "--results", str(results), "--repeat", str(repeat)]
    if warmup:
        args.append("--warmup")
    with log_path.open("ab") as log:
        ensure_migrated(env, log)
        proc = subprocess.run([*args, *dag_ids], env={**child_env(env), CHILD_MARK: "1"}, stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout)
    if not results.exists():
        raise RuntimeError(f"the Airflow runner exited with {proc.returncode} and no results; see {log_path}")
    return json.loads(results.read_text())


# -- the runner process ---------------------------------------------------------------------


def load_dags(folder: Path) -> dict[str, Any]:
    """Import every DAG file in ``folder`` and return its DAGs by id."""
    from airflow.sdk import DAG

    dags: dict[str, Any] = {}
    for path in sorted(folder.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"lineage_dags_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        dags.update({d.dag_id: d for d in vars(module).values() if isinstance(d, DAG)})
    return dags


def _run_one(dag: Any) -> dict[str, Any]:
    started = time.perf_counter()
    dagrun = dag.test()
    seconds = time.perf_counter() - started
    tasks = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dagrun.get_task_instances()}
    return {
        "dag_id": dag.dag_id,
        "run_id": dagrun.run_id,
        "state": str(getattr(dagrun.state, "value", dagrun.state)),
        "seconds": round(seconds, 3),
        "tasks": tasks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lineage.airflow.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("dag_ids", nargs="+")
    parser.add_argument("--results", type=Path, help="Write the JSON summary here (default: print it).")
    parser.add_argument("--repeat", type=int, default=1, help="Run the whole list this many times.")
    parser.add_argument("--warmup", action="store_true", help="Run the whole list once, untimed, first.")
    args = parser.parse_args(argv)
    if os.environ.get(CHILD_MARK) != "1":  # typed in a shell: configure Airflow, run in a child
        settings = Settings()
        summary = run(args.dag_ids, airflow_env(settings), log_path=settings.home / "logs" / "runner.log",
                      repeat=args.repeat, warmup=args.warmup)
        text = json.dumps(summary, indent=2, default=str)
        if args.results:
            args.results.write_text(text)
        else:
            print(text)
        return 0 if "runs" in summary and all(r["state"] == "success" for r in summary["runs"]) else 1
    if args.results is None:
        parser.error("--results is required in the configured child")

    from lineage.airflow.gate import DECISIONS

    dags = load_dags(Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", default_dags_folder())))
    unknown = [d for d in args.dag_ids if d not in dags]
    if unknown:
        args.results.write_text(json.dumps({"error": f"unknown DAG(s) {unknown}; known: {sorted(dags)}"}))
        return 2
    if args.warmup:  # one untimed pass: first dag.test() starts Airflow's in-process API, imports
        for d in args.dag_ids:
            dags[d].test()
    runs = [_run_one(dags[d]) for _ in range(args.repeat) for d in args.dag_ids]
    _flush_lineage()
    summary = {"runs": runs, "gate": DECISIONS}
    args.results.write_text(json.dumps(summary, indent=2, default=str))
    return 0 if all(r["state"] == "success" for r in runs) else 1


def _flush_lineage() -> None:
    """Close the provider's client so nothing queued is dropped when the process exits."""
    try:
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

        listener = get_openlineage_listener()
        client = getattr(getattr(listener, "adapter", None), "_client", None)
        if client is not None:
            client.close()
    except Exception:  # lineage never fails a run, including at shutdown
        pass


if __name__ == "__main__":
    sys.exit(main())
