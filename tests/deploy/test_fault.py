"""The deployment's processes, for real, with one API process and one worker killed mid-run.

The commands are the ones the Kubernetes manifests run (``deploy_files.commands()``), with the
listening address moved to loopback: the migration Job once, two API processes (as the API
Deployment: ``LINEAGE_DERIVE_WORKERS=0``, no owner URL) on two ports, two derivation workers
with their probe servers, one PostgreSQL.  Several openlineage-python clients
(``HttpTransport``, API-key auth) send START and COMPLETE events; a client whose server does
not answer sends the event to the other one, as a load balancer would.  Mid-run one API
process and one worker get SIGKILL.

Then: every acknowledged event is stored exactly once, no event is stored twice, the graph
holds every acknowledged run in its final state with its inputs and outputs, nothing is left
queued, and the surviving processes' probes are green.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

import deploy_files

LINEAGE = str(Path(sys.executable).with_name("lineage"))
CLIENTS = 6
RUNS_PER_CLIENT = 60
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback(args: list[str], port: int) -> list[str]:
    """The manifest's arguments, listening on 127.0.0.1:port instead of 0.0.0.0."""
    out = list(args)
    if "--host" in out:
        out[out.index("--host") + 1] = "127.0.0.1"
    if "--port" in out:
        out[out.index("--port") + 1] = str(port)
    if "--listen" in out:
        out[out.index("--listen") + 1] = f"127.0.0.1:{port}"
    return out


def _wait(url: str, what: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not answer {url} in {timeout} s")


@pytest.fixture
def deployment(tmp_path, role_urls):
    commands = deploy_files.commands()
    base = dict(os.environ, LINEAGE_HOME=str(tmp_path / "home"), LINEAGE_DATABASE_URL=role_urls["app"])
    base.pop("LINEAGE_MIGRATION_DATABASE_URL", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str], env: dict) -> subprocess.Popen:
        p = subprocess.Popen([LINEAGE, *args], env=env, stdout=open(logs / f"{name}.log", "wb"), stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    migrate = subprocess.run([LINEAGE, *commands["k8s/Job/lineage-migrate/migrate"]], capture_output=True, text=True, timeout=300,
                             env=dict(base, LINEAGE_MIGRATION_DATABASE_URL=role_urls["owner"]))
    assert migrate.returncode == 0, migrate.stderr
    api_env = dict(base, LINEAGE_DERIVE_WORKERS="0")
    apis, workers = [], []
    try:
        for k in range(2):
            port = _free_port()
            p = start(f"api-{k}", _loopback(commands["k8s/Deployment/lineage-api/api"], port), api_env)
            apis.append((p, f"http://127.0.0.1:{port}"))
        for k in range(2):
            port = _free_port()
            p = start(f"derive-{k}", _loopback(commands["k8s/Deployment/lineage-derive/derive"], port), base)
            workers.append((p, f"http://127.0.0.1:{port}"))
        for p, url in apis:
            _wait(url + "/healthz", "API", p)
        for p, url in workers:
            _wait(url + "/healthz", "worker", p)
        yield {"apis": apis, "workers": workers, "logs": logs}
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def _events(client: int) -> list[tuple[str, str, dict]]:
    from lineage.samples import dataset, run_event

    out = []
    for r in range(RUNS_PER_CLIENT):
        rid = str(uuid.uuid4())
        job = ("fault", f"job-{client}-{r % 4}")
        ins = [dataset("fault-db", f"in{r % 5}", [("a", "int")])]
        outs = [dataset("fault-db", f"out-{client}-{r % 3}", [("a", "int")])]
        at = T0 + timedelta(minutes=client * 1000 + r)
        out.append((rid, "START", run_event("START", job, rid, ins, outs, at)))
        out.append((rid, "COMPLETE", run_event("COMPLETE", job, rid, ins, outs, at + timedelta(seconds=30))))
    return out


def _client(urls: list[str], token: str, events, acked: list, failures: list, progress: list, retried: list) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.serde import Serde  # noqa: F401  (the client's own serialiser is used by emit)
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    clients = [OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(
        {"url": url, "timeout": 5, "auth": {"type": "api_key", "apiKey": token},
         "retry": {"total": 0}}))) for url in urls]
    for rid, kind, event in events:
        for attempt in range(40):
            transport = clients[attempt % len(clients)].transport
            try:
                transport.emit(_as_run_event(event))
            except Exception:  # noqa: BLE001 - refused connection, reset, 5xx: the next server, as a balancer would
                retried.append((rid, kind))
                time.sleep(0.05)
                continue
            acked.append((rid, kind))
            progress.append(1)
            break
        else:
            failures.append((rid, kind))


def _as_run_event(event: dict):
    from openlineage.client.event_v2 import Dataset, Job, Run, RunEvent, RunState

    return RunEvent(
        eventType=RunState(event["eventType"]), eventTime=event["eventTime"],
        run=Run(runId=event["run"]["runId"]), job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        producer=event["producer"],
        inputs=[Dataset(namespace=d["namespace"], name=d["name"]) for d in event["inputs"]],
        outputs=[Dataset(namespace=d["namespace"], name=d["name"]) for d in event["outputs"]],
    )


def test_killing_an_api_process_and_a_worker_mid_run_loses_no_acknowledged_event(deployment, tokens, role_urls):
    token = tokens("fault-emitter", "emitter", "viewer")
    urls = [url for _, url in deployment["apis"]]
    acked: list[tuple[str, str]] = []
    failures: list = []
    progress: list = []
    retried: list = []
    sent = {c: _events(c) for c in range(CLIENTS)}
    threads = [threading.Thread(target=_client, args=(urls[c % 2:] + urls[:c % 2], token, sent[c], acked, failures, progress, retried))
               for c in range(CLIENTS)]
    for t in threads:
        t.start()
    total = CLIENTS * RUNS_PER_CLIENT * 2
    deadline = time.monotonic() + 120
    while len(progress) < total // 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim_api, _ = deployment["apis"][0]
    victim_worker, _ = deployment["workers"][0]
    victim_api.send_signal(signal.SIGKILL)
    victim_worker.send_signal(signal.SIGKILL)
    killed_at = len(progress)
    for t in threads:
        t.join(300)
    assert killed_at < total, "the processes were killed after the run: nothing was tested"
    print(f"killed at {killed_at} of {total} acknowledged; retried sends: {len(retried)}")
    assert failures == [], f"{len(failures)} events were never acknowledged by either server"
    assert retried, "no send met the killed server: the fault was not exercised"
    assert len(acked) == total == len(set(acked))

    # Derivation catches up on the surviving worker (its peer died holding whatever it claimed).
    with psycopg.connect(role_urls["app"]) as conn:
        deadline = time.monotonic() + 120
        while conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] and time.monotonic() < deadline:
            conn.commit()
            time.sleep(0.2)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM derive_queue").fetchone()[0] == 0, "events left underived"
        stored = conn.execute(
            "SELECT run_uuid::text, event_type, count(*) FROM raw_events WHERE job_namespace = 'fault' GROUP BY 1, 2").fetchall()
        assert all(n == 1 for _, _, n in stored), "an event was stored twice"
        assert {(r, k) for r, k, _ in stored} == set(acked), "stored events differ from acknowledged ones"
        assert conn.execute("SELECT count(*), count(DISTINCT event_key) FROM raw_events").fetchone()[0] == len(stored)
        runs = dict(conn.execute(
            "SELECT r.run_uuid::text, r.state FROM runs r JOIN jobs j ON j.id = r.job_id JOIN namespaces n ON n.id = j.namespace_id"
            " WHERE n.name = 'fault'").fetchall())
        assert len(runs) == CLIENTS * RUNS_PER_CLIENT and set(runs.values()) == {"COMPLETE"}
        edges = conn.execute(
            "SELECT count(*) FILTER (WHERE direction = 'i'), count(*) FILTER (WHERE direction = 'o') FROM run_io io"
            " WHERE io.run_uuid = ANY(%s::uuid[])", (list(runs),)).fetchone()
        assert edges == (len(runs), len(runs)), "a run lost an input or output edge"

    _, api_url = deployment["apis"][1]
    _, worker_url = deployment["workers"][1]
    ready = httpx.get(api_url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert httpx.get(api_url + "/healthz", timeout=10).status_code == 200
    assert httpx.get(worker_url + "/healthz", timeout=10).status_code == 200
    # A read through the surviving API sees a run acknowledged last (read-after-write).
    rid, _ = acked[-1]
    r = httpx.get(f"{api_url}/api/v1/jobs/runs/{rid}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200 and r.json()["state"] == "COMPLETED", r.text
