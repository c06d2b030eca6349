"""The Airflow OpenLineage provider delivers events with an API token, configured either way.

* openlineage-python's own HTTP transport with ``auth: {type: api_key, apiKey: ...}`` in
  ``[openlineage] transport``;
* :class:`~lineage.airflow.transport.SpoolingTransport` kept whole in an Airflow connection
  (``[openlineage] config_conn_id``), its token in the connection's password and named by
  ``auth: {type: airflow_connection_api_key}`` — the provider (2.20) swaps in the password.

A one-task DAG keeps each run to one Airflow process.  Asserted from the store: the task's
START and COMPLETE arrived, stored as sent by the token's principal.  With a wrong token in
the connection, the task still succeeds and its events wait in the spool, from which a valid
token replays them.
"""

from __future__ import annotations

import json

import pytest

from lineage.airflow import runner

pytestmark = [pytest.mark.airflow]

PROBE = '''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

with DAG("auth_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    PythonOperator(task_id="noop", python_callable=lambda: "done")
'''


@pytest.fixture
def probe_dags(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "auth_probe.py").write_text(PROBE)
    return folder


def _run(settings, env: dict, name: str) -> dict:
    result = runner.run(["auth_probe"], env, log_path=settings.home / "logs" / f"{name}.log", timeout=300)
    assert [r["state"] for r in result["runs"]] == ["success"], result
    return result


def _probe_events(db) -> list[str]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT payload->>'eventType' FROM raw_events WHERE job_name = 'auth_probe.noop' ORDER BY event_time, id"
        ).fetchall()
    return [r[0] for r in rows]


def test_provider_http_transport_with_an_api_key(live_server, db, settings, airflow_home, probe_dags, tokens):
    env = runner.airflow_env(settings, server_url=live_server.url, dags_folder=probe_dags, airflow_home=airflow_home)
    transport = {"type": "http", "url": live_server.url, "endpoint": "api/v1/lineage",
                 "auth": {"type": "api_key", "apiKey": tokens("airflow-http", "emitter", namespaces=[runner.NAMESPACE])}}
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
    env["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"] = "false"  # the plain transport is synchronous anyway
    _run(settings, env, "http-transport")
    assert _probe_events(db) == ["START", "COMPLETE"]


def _connection_env(settings, live_server, airflow_home, probe_dags, token: str) -> dict:
    env = runner.airflow_env(settings, server_url=live_server.url, dags_folder=probe_dags, airflow_home=airflow_home)
    transport = json.loads(env.pop("AIRFLOW__OPENLINEAGE__TRANSPORT"))  # only the connection configures it
    assert "api_key" not in transport, "the settings carry no token: it must come from the connection"
    transport["auth"] = {"type": "airflow_connection_api_key"}
    env["AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID"] = "lineage_openlineage"
    env["AIRFLOW_CONN_LINEAGE_OPENLINEAGE"] = json.dumps({"conn_type": "generic", "password": token, "extra": {"transport": transport}})
    return env


def test_provider_reads_transport_and_token_from_an_airflow_connection(live_server, db, settings, airflow_home, probe_dags, tokens):
    token = tokens("airflow-conn", "emitter", namespaces=[runner.NAMESPACE])
    _run(settings, _connection_env(settings, live_server, airflow_home, probe_dags, token), "connection")
    assert _probe_events(db) == ["START", "COMPLETE"]
    assert not list(settings.spool_dir.glob("*.ndjson")), "delivered, so nothing spooled"


def test_a_wrong_token_in_the_connection_fails_no_task_and_loses_no_event(live_server, db, settings, airflow_home, probe_dags, tokens):
    from lineage.airflow.spool import replay, status
    from lineage.airflow.transport import HttpSender

    wrong = "lin_000000000000_" + "y" * 43
    _run(settings, _connection_env(settings, live_server, airflow_home, probe_dags, wrong), "wrong-token")
    assert _probe_events(db) == []
    assert status(settings.spool_dir).pending >= 2, "events refused for their token must wait in the pending spool"
    result = replay(settings.spool_dir, HttpSender(live_server.url, api_key=tokens("airflow-fixed", "emitter")))
    assert (result.rejected, result.stopped, status(settings.spool_dir).pending) == (0, None, 0)
    assert _probe_events(db) == ["START", "COMPLETE"]
