"""The example DAGs under a real Airflow: scheduler, dag-processor and api-server as processes.

What a platform team runs, on loopback: ``lineage serve`` over a store on the session's
PostgreSQL; Airflow 3 with LocalExecutor and its metadata in a second database on the same
server; every Airflow component configured only by the environment block of
``docs/airflow.md`` (see ``scheduler_harness.doc_environment``), with an emitter token for the
transport and a gate token for the gate, and no database credentials of the lineage store.

The DAGs are unpaused and the scheduler runs them on their own schedules: each partner's
ingest DAG on its daily schedule, the training-set and training DAGs on the Assets the one
before updates.  Asserted from the store, not from Airflow's word: DAG-level and task-level
START and terminal events for every run Airflow recorded, the datasets of every transfer, the
blocked training's FAIL with the gate's reasons, the model's upstream reaching the partner's
drop, and nothing left in the spool.  Then the lineage server is stopped, a DAG runs, the server
comes back, and every event of that run arrives through the spool's replay.  Throughout,
``/proc`` shows what each Airflow process was given: no process holds the store's URL or
password, and none listens beyond loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import scheduler_harness`

import scheduler_harness as harness  # noqa: E402
from tests_support import clone_database, drop_database, with_db  # noqa: E402

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

NAMESPACE = "ml-pipeline"
# Bounds, not expectations: a run that takes longer than this is a failure worth reading about.
START_TIMEOUT = 240
RUNS_TIMEOUT = 600


@dataclass
class Deployment:
    root: Path
    server: harness.LineageServer
    airflow: harness.Airflow
    store_url: str  # the lineage store, as the server connects (app role)
    store_secret: str  # a mark in the server's database URL: must reach no Airflow process
    store_db: str
    spool: Path
    demo_home: Path
    admin_token: str
    emitter_token: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.store_url) as conn:
            rows = conn.execute("SELECT payload FROM raw_events WHERE kind = 'run' ORDER BY event_time, id").fetchall()
        return [r[0] for r in rows]


def _expected_dags() -> dict[str, str]:
    """Each example DAG and the state its scheduled run must end in."""
    from example_pipeline.pipeline import PARTNERS

    acme, love = PARTNERS["acme"], PARTNERS["lovematch"]
    return {**{d: "success" for d in acme.dag_ids}, love.dag_ids[0]: "success", love.dag_ids[1]: "success",
            love.dag_ids[2]: "failed"}


def _lineage_cli(args: list[str], server: harness.LineageServer, token: str, home: Path) -> subprocess.CompletedProcess:
    env = harness.base_env({"LINEAGE_URL": server.url, "LINEAGE_TOKEN": token, "LINEAGE_HOME": str(home)})
    done = subprocess.run(["lineage", *args], env=env, cwd=home, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _create_token(server, admin: str, home: Path, name: str, role: str, *extra: str) -> str:
    out = _lineage_cli(["tokens", "create", name, "--principal", "airflow", "--role", role, *extra], server, admin, home)
    return out.stdout.strip().splitlines()[-1]  # the token is printed once, on the last line


@pytest.fixture(scope="module")
def deployment(pg_root, tmp_path_factory):
    """The whole deployment, after the scheduler ran every example DAG once."""
    from example_pipeline.drops import write_drop
    from example_pipeline.pipeline import PARTNERS
    from lineage.auth import tokens
    from lineage.config import Settings
    from example_pipeline.demo import setup_contracts, setup_people
    from lineage.store.roles import role_url

    root = tmp_path_factory.mktemp("scheduler")
    logs = root / "logs"
    pid = os.getpid()
    store_db = f"lineage_sched_{pid}"
    urls = clone_database(pg_root, store_db, f"lineage_template_{pid}")
    # A unique mark in the store's URL (harmless to any authentication method), so that a copy
    # of it anywhere in an Airflow process's environment is found, however it was rewritten.
    store_secret = secrets.token_hex(16)
    store_url = urls["app"] + ("&" if "?" in urls["app"] else "?") + f"application_name=lineage-{store_secret}"

    # Airflow's metadata: its own role and database on the same server.
    af_role, af_password = f"airflow_meta_{pid}", secrets.token_hex(12)
    with psycopg.connect(pg_root, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{af_role}"')
        conn.execute(f'DROP ROLE IF EXISTS "{af_role}"')
        conn.execute(f"CREATE ROLE \"{af_role}\" LOGIN PASSWORD '{af_password}'")
        conn.execute(f'CREATE DATABASE "{af_role}" OWNER "{af_role}"')
    metadata_url = role_url(with_db(pg_root, af_role), af_role, af_role, password=af_password)

    server = harness.LineageServer(store_url, root / "lineage-server", logs)
    airflow = None
    try:
        server.home.mkdir(parents=True)
        server.start()
        with psycopg.connect(urls["app"]) as conn:  # the first admin, as `lineage tokens create --bootstrap` makes it
            _, admin = tokens.create(conn, name="platform-admin", principal="platform@example.com", roles=["admin"], created_by="tests")
            conn.commit()
        # The documented commands: an emitter token for the transport, a token for the gate.
        emitter = _create_token(server, admin, root, "airflow-prod", "emitter", "--namespace", NAMESPACE)
        gate = _create_token(server, admin, root, "airflow-gate", "emitter", "--namespace", NAMESPACE)

        # The example pipeline's set-up: the partners' drops, and the contracts approved by people.
        demo_home = root / "demo"
        for partner in PARTNERS.values():
            write_drop(partner, demo_home)
        at_server = Settings(home=demo_home, url=server.url)
        setup_contracts(at_server, setup_people(at_server, admin))

        api_port = harness.free_port()
        airflow_home = root / "airflow"
        spool = root / "spool"
        env = harness.doc_environment({
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW_DAGS": str(harness.REPO / "dags"),
            "AIRFLOW_DB": metadata_url.split("://", 1)[1],
            "AIRFLOW_API": f"http://127.0.0.1:{api_port}",
            "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),
            "LINEAGE_SERVER": server.url,
            "LINEAGE_SPOOL": str(spool),
            "LINEAGE_EMITTER_TOKEN": emitter,
            "LINEAGE_GATE_TOKEN": gate,
        })
        # Not the doc's: where the example pipeline's DAGs find their files (a team's DAGs know their own).
        env["LINEAGE_EXAMPLE_DATA"] = str(demo_home)
        airflow = harness.Airflow(harness.base_env(env), airflow_home, logs, api_port, metadata_url)
        airflow.start(START_TIMEOUT)
        expected = _expected_dags()
        airflow.wait_for_dags(list(expected), START_TIMEOUT)
        for dag_id in expected:
            airflow.set_paused(dag_id, False)

        def done(runs):
            finished = {r["dag_id"]: r["state"] for r in runs if r["state"] in harness.TERMINAL}
            return set(expected) <= set(finished) and all(r["state"] in harness.TERMINAL for r in runs)

        runs = airflow.wait_for_runs(done, RUNS_TIMEOUT)
        deployment = Deployment(root, server, airflow, store_url, store_secret, store_db, spool, demo_home, admin, emitter, runs)
        yield deployment
    finally:
        if airflow is not None:
            airflow.stop()
        server.stop()
        drop_database(pg_root, store_db)
        with psycopg.connect(pg_root, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{af_role}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{af_role}"')


# -- the harness itself (no deployment) -------------------------------------------------------


def test_the_doc_block_refuses_missing_or_unknown_site_values():
    names = harness.site_names(harness.doc_block())
    site = {name: "x" for name in names}
    with pytest.raises(AssertionError, match="site values"):
        harness.doc_environment({k: v for k, v in site.items() if k != "LINEAGE_SERVER"})
    with pytest.raises(AssertionError, match="site values"):
        harness.doc_environment({**site, "LINEAGE_DATABASE_URL": "postgresql://x"})
    env = harness.doc_environment(site)
    # Only what the doc exports reaches a component: plain shell variables stay behind.
    assert "LINEAGE_EMITTER_TOKEN" not in env and "AIRFLOW_DB" not in env and env["AIRFLOW_HOME"] == "x"


def test_components_get_nothing_of_the_test_process_environment(monkeypatch):
    monkeypatch.setenv("LINEAGE_DATABASE_URL", "postgresql://leak@/x")
    monkeypatch.setenv("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "sqlite:///leak")
    env = harness.base_env({"A": "1"})
    assert "LINEAGE_DATABASE_URL" not in env and "AIRFLOW__CORE__SQL_ALCHEMY_CONN" not in env and env["A"] == "1"


# -- reading the store -----------------------------------------------------------------------


def _airflow_run_id(event: dict) -> str | None:
    """The Airflow run id an event belongs to (DAG-level and task-level events alike)."""
    facets = event["run"].get("facets", {})
    for name in ("airflowDagRun", "airflow"):
        run_id = facets.get(name, {}).get("dagRun", {}).get("run_id")
        if run_id:
            return run_id
    return None


def _by_run(events: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Events by (OpenLineage job name, Airflow run id)."""
    out: dict[tuple[str, str], list[dict]] = {}
    for e in events:
        assert e["job"]["namespace"] == NAMESPACE, e["job"]
        out.setdefault((e["job"]["name"], _airflow_run_id(e)), []).append(e)
    return out


TERMINAL_EVENT = {"success": "COMPLETE", "failed": "FAIL"}


def _missing_events(runs: list[dict], events: list[dict]) -> list[str]:
    """What the store lacks for ``runs``: for each DAG run and each task that ran, a START and
    the terminal event its state calls for (``[]`` when nothing is missing)."""
    found = _by_run(events)
    missing = []
    for run in runs:
        expect = {run["dag_id"]: run["state"]}
        expect.update({f"{run['dag_id']}.{t}": s for t, s in run["tasks"].items() if s in harness.TERMINAL})
        for job, state in expect.items():
            types = [e["eventType"] for e in found.get((job, run["run_id"]), [])]
            for want in ("START", TERMINAL_EVENT.get(state, state)):
                if want not in types:
                    missing.append(f"{job} {run['run_id']}: no {want} (has {types})")
    return missing


def _wait_for_events(deployment: Deployment, runs: list[dict], timeout: float = 90) -> list[dict]:
    """The store's events once every run's events are there (the scheduler emits DAG-level
    terminal events after the run's state is final, so they may trail it a little)."""
    deadline = time.monotonic() + timeout
    while True:
        events = deployment.events()
        missing = _missing_events(runs, events)
        if not missing or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _ids(datasets: list[dict]) -> list[str]:
    return sorted(f"{d['namespace']}:{d['name']}" for d in datasets)


def _spooled(spool: Path, kind: str = "pending") -> list[dict]:
    """Events in the spool: ``pending`` (written, not yet acknowledged by the server), or put
    aside as ``rejected`` or ``malformed``."""
    from lineage.airflow.spool import DONE_SUFFIX, line_key

    out = []
    for path in sorted(spool.glob(f"{kind}-*.ndjson")):
        marks = path.with_name(path.name + DONE_SUFFIX)
        done = set(marks.read_text().split()) if kind == "pending" and marks.exists() else set()
        for line in path.read_bytes().splitlines():
            if line.strip() and line_key(line) not in done:
                out.append(json.loads(line) if kind != "malformed" else line)
    return out


# -- the scheduled runs ----------------------------------------------------------------------


def test_the_scheduler_ran_every_example_dag_to_its_expected_end(deployment):
    final = {}
    for run in deployment.runs:
        final.setdefault(run["dag_id"], set()).add(run["state"])
    assert final == {d: {s} for d, s in _expected_dags().items()}, json.dumps(deployment.runs, default=str)
    kinds = {r["dag_id"]: r["run_type"] for r in deployment.runs}
    # Nobody triggered anything: the daily schedule started the ingest, Assets the rest.
    assert {kinds[d] for d in kinds if d.startswith("ingest_")} == {"scheduled"}
    assert {kinds[d] for d in kinds if not d.startswith("ingest_")} == {"asset_triggered"}


def test_every_run_reports_dag_and_task_start_and_end_events(deployment):
    events = _wait_for_events(deployment, deployment.runs)
    assert _missing_events(deployment.runs, events) == []
    # Exactly one START and one terminal event per DAG run and per task try: nothing twice.
    counts = Counter((e["job"]["name"], _airflow_run_id(e), e["eventType"]) for e in events)
    assert [k for k, n in counts.items() if n > 1] == []
    # A task the gate stopped never started, so it reports nothing.
    from example_pipeline.pipeline import PARTNERS, job_names

    assert not [e for e in events if e["job"]["name"] == job_names(PARTNERS["lovematch"])["train"]]


def test_every_transfer_reports_its_inputs_and_outputs(deployment):
    from example_pipeline.pipeline import PARTNERS, job_names

    events = _wait_for_events(deployment, deployment.runs)
    acme, love = PARTNERS["acme"], PARTNERS["lovematch"]
    expected = {
        job_names(acme)["transfer"]: ([acme.drop.id], [acme.raw.id]),
        job_names(acme)["curate"]: ([acme.raw.id], [acme.training_set.id]),
        job_names(acme)["train"]: ([acme.training_set.id], [acme.model_card.id, acme.model.id]),
        job_names(love)["transfer"]: ([love.drop.id], [love.raw.id]),
        job_names(love)["curate"]: ([love.raw.id], [love.training_set.id]),
    }
    for job, (inputs, outputs) in expected.items():
        [complete] = [e for e in events if e["job"]["name"] == job and e["eventType"] == "COMPLETE"]
        assert (_ids(complete["inputs"]), _ids(complete["outputs"])) == (sorted(inputs), sorted(outputs)), job
        for ds in complete["inputs"] + complete["outputs"]:
            assert {"dataSource", "version"} <= set(ds["facets"]), (job, ds["name"], sorted(ds["facets"]))
        assert "sourceCode" not in json.dumps(complete), "operator source code must stay out of events"


def test_the_blocked_training_fails_at_the_gate_with_its_reasons(deployment):
    from example_pipeline.pipeline import PARTNERS, job_names

    events = _wait_for_events(deployment, deployment.runs)
    love, acme = PARTNERS["lovematch"], PARTNERS["acme"]
    [fail] = [e for e in events if e["job"]["name"] == job_names(love)["gate"] and e["eventType"] == "FAIL"]
    gate = fail["run"]["facets"]["contractGate"]
    assert gate["allowed"] is False and gate["purpose"] == "train_ai_system"
    assert any("purpose_prohibited" in r and love.contract_id in r for r in gate["reasons"]), gate["reasons"]
    [inp] = fail["inputs"]
    assert inp["facets"]["sourceContract"]["allowed"] is False
    [dag_fail] = [e for e in events if e["job"]["name"] == love.dag_ids[2] and e["eventType"] == "FAIL"]
    assert _airflow_run_id(dag_fail) == _airflow_run_id(fail)
    # ... while the licensed partner's training passed the same gate over HTTP.
    [ok] = [e for e in events if e["job"]["name"] == job_names(acme)["gate"] and e["eventType"] == "COMPLETE"]
    assert ok["run"]["facets"]["contractGate"]["allowed"] is True, ok["run"]["facets"]["contractGate"]["reasons"]


def test_the_models_upstream_reaches_the_partner_drop(deployment):
    from example_pipeline.pipeline import PARTNERS
    from lineage.events.ids import NodeId
    from lineage.store import graph

    acme, love = PARTNERS["acme"], PARTNERS["lovematch"]
    _wait_for_events(deployment, deployment.runs)
    with psycopg.connect(deployment.store_url) as conn:
        up = graph.upstream(conn, NodeId("dataset", "models", acme.model.name))
        down = graph.downstream(conn, NodeId("dataset", "partner-drops", love.drop.name))
    assert graph.original_sources(up) == [acme.drop.node_id]
    assert {acme.raw.node_id, acme.training_set.node_id} <= set(up.node_ids())
    assert not any(n.startswith("dataset:models:") for n in down.node_ids()), "no model from the blocked partner"


def test_nothing_is_left_in_the_spool(deployment):
    _wait_for_events(deployment, deployment.runs)
    assert [_spooled(deployment.spool, kind) for kind in ("pending", "rejected", "malformed")] == [[], [], []]


# -- the lineage server goes away -------------------------------------------------------------


def _replay(deployment: Deployment) -> subprocess.CompletedProcess:
    """``lineage spool replay`` as the docs say: the spool directory, the server, an emitter token."""
    return _lineage_cli(["spool", "replay", "--dir", str(deployment.spool)], deployment.server, deployment.emitter_token, deployment.root)


@pytest.fixture(scope="module")
def outage(deployment):
    """With the server down, the scheduler runs ACME's ingest; then the server returns and the
    spool is replayed.  Returns ``(run, spooled events, store events after the replay)``."""
    from example_pipeline.pipeline import PARTNERS

    airflow, dag_id = deployment.airflow, PARTNERS["acme"].dag_ids[0]
    for other in _expected_dags():  # only this DAG: its Asset must not start the rest
        if other != dag_id:
            airflow.set_paused(other, True)
    deployment.server.stop()
    run_id = airflow.trigger(dag_id)
    [run] = airflow.wait_for_runs(lambda runs: any(r["run_id"] == run_id and r["state"] in harness.TERMINAL for r in runs), RUNS_TIMEOUT)[-1:]
    run = next(r for r in airflow.runs() if r["run_id"] == run_id)
    # The scheduler reports the DAG run's end after the run ends: wait until it is spooled too.
    deadline = time.monotonic() + 90
    while not _missing_events([run], _spooled(deployment.spool)) == [] and time.monotonic() < deadline:
        airflow.observe()
        time.sleep(0.5)
    spooled = _spooled(deployment.spool)
    deployment.server.start()
    replayed = _replay(deployment)
    print(replayed.stderr)
    return run, spooled, _wait_for_events(deployment, [run])


def test_a_run_while_the_server_is_down_succeeds_and_arrives_through_the_spool(deployment, outage):
    run, spooled, events = outage
    assert run["state"] == "success" and set(run["tasks"].values()) == {"success"}, run  # emission never fails a task
    assert _missing_events([run], spooled) == [], "every event of the run waited in the spool"
    assert _missing_events([run], events) == [], "... and reached the store after the replay"
    mine = [e for e in events if _airflow_run_id(e) == run["run_id"]]
    assert len(mine) == len({(e["job"]["name"], e["eventType"]) for e in mine}) == 4, [(e["job"]["name"], e["eventType"]) for e in mine]
    assert _spooled(deployment.spool) == []


# -- what the Airflow processes hold ----------------------------------------------------------


def _leaks(environs: dict[int, dict[str, str]], deployment: Deployment) -> list[str]:
    """``pid VARIABLE`` for every variable that names or carries the lineage store's credentials."""
    out = []
    for pid, env in environs.items():
        for key, value in env.items():
            if key in ("LINEAGE_DATABASE_URL", "LINEAGE_MIGRATION_DATABASE_URL") or deployment.store_secret in value \
                    or deployment.store_db in value:
                out.append(f"{pid} {key}")
    return out


def test_no_airflow_process_holds_the_lineage_store_credentials(deployment, outage):
    deployment.airflow.observe()
    procs = list(deployment.airflow.procs.values())
    environs = {pid: env for p in procs for pid, env in p.environs.items()}
    commands = " | ".join(cmd for p in procs for cmd in p.seen.values())
    # We did look at the processes that matter: the three components and the task processes.
    for needle in ("scheduler", "dag-processor", "api_server", "LocalExecutor: 0"):
        assert needle in commands, commands
    assert _leaks(environs, deployment) == []
    # What they hold instead: the server's URL and a token.  (An empty environment would make
    # the check above pass vacuously; setproctitle would blank it without SPT_NOENV.)
    without = {pid for pid, env in environs.items() if env.get("LINEAGE_URL") != deployment.server.url or not env.get("LINEAGE_TOKEN")}
    assert without == set(), [p.seen.get(pid) for p in procs for pid in without if pid in p.seen]
    # The same check finds the credentials where they are: in the lineage server's own process.
    deployment.server.proc.observe()
    assert any(leak.endswith(" LINEAGE_DATABASE_URL") for leak in _leaks(deployment.server.proc.environs, deployment))


def test_no_airflow_process_listens_beyond_loopback(deployment, outage):
    listens = {entry for p in deployment.airflow.procs.values() for entry in p.listens}
    assert any(port == deployment.airflow.api_port for _, _, port in listens), listens  # we saw the api-server's
    assert [(cmd, addr, port) for cmd, addr, port in listens if addr not in ("127.0.0.1", "::1")] == []


def test_stopping_leaves_no_process_and_no_port(deployment, outage):
    procs = [*deployment.airflow.procs.values(), deployment.server.proc]
    deployment.airflow.stop()
    deployment.server.stop()
    assert [left for p in procs for left in p.leftovers()] == []
    assert harness.port_is_free(deployment.airflow.api_port) and harness.port_is_free(deployment.server.port)
