"""``deploy/airflow-helm-values.yaml`` says what ``docs/airflow.md``'s environment block says.

The values file is not rendered here (no Helm, no cluster); what can drift is checked: it
parses as YAML, its ``config.openlineage.*`` is the documented transport, namespace, thread
and emission policy (the doc's block run with the values file's URL and spool directory), the
secrets it reads are the ones the doc's ``kubectl create secret`` lines create, the spool
volume is mounted where the transport spools, and no credential of the lineage store is in it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # for `import scheduler_harness`

import scheduler_harness as harness  # noqa: E402

VALUES = harness.REPO / "deploy" / "airflow-helm-values.yaml"


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def _documented(transport: dict) -> dict[str, str]:
    """The doc's environment block, run with the values file's server URL and spool directory."""
    site = {name: "x" for name in harness.site_names(harness.doc_block())}
    site.update({"LINEAGE_SERVER": transport["url"], "LINEAGE_SPOOL": transport["spool_dir"]})
    return harness.doc_environment(site)


def test_openlineage_config_is_the_documented_transport(values):
    openlineage = values["config"]["openlineage"]
    transport = json.loads(openlineage["transport"])
    doc = _documented(transport)
    assert transport == json.loads(doc["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert openlineage["namespace"] == doc["AIRFLOW__OPENLINEAGE__NAMESPACE"]
    assert openlineage["execute_in_thread"].lower() == doc["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"].lower() == "true"
    assert json.loads(openlineage["emission_policy"]) == json.loads(doc["AIRFLOW__OPENLINEAGE__EMISSION_POLICY"])


def test_every_variable_the_doc_sets_has_its_counterpart(values):
    transport = json.loads(values["config"]["openlineage"]["transport"])
    doc = _documented(transport)
    secret_env = {s["envName"] for s in values["secret"]}
    plain_env = {e["name"]: e["value"] for e in values["env"]}
    # What the chart builds from its own values, and what comes from `config:`.
    from_chart = {"AIRFLOW_HOME", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__DAGS_FOLDER",
                  "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET"}
    from_config = {f"AIRFLOW__{section.upper()}__{key.upper()}" for section, keys in values["config"].items() for key in keys}
    uncovered = set(doc) - from_chart - from_config - secret_env - set(plain_env)
    assert uncovered == set(), f"set by docs/airflow.md but not by {VALUES.name}"
    assert values["executor"] and values["data"]["metadataSecretName"] and values["jwtSecretName"]
    assert plain_env["LINEAGE_URL"] == transport["url"]
    assert {"AIRFLOW_CONN_LINEAGE_EMITTER", "LINEAGE_TOKEN"} <= secret_env, "tokens come from Secrets"
    assert values["config"]["core"]["execution_api_server_url"].endswith("/execution/")


def test_secrets_are_the_ones_the_doc_creates(values):
    text = harness.DOC.read_text()
    created: dict[str, set[str]] = {}
    for name, args in re.findall(r"kubectl create secret generic (\S+)((?:.*\\\n)*.*)", text):
        created[name] = set(re.findall(r"--from-literal=([\w-]+)=", args))
    used = {(s["secretName"], s["secretKey"]) for s in values["secret"]}
    used |= {(values["data"]["metadataSecretName"], "connection"), (values["jwtSecretName"], "jwt-secret")}
    missing = {(name, key) for name, key in used if key not in created.get(name, set())}
    assert missing == set(), f"{VALUES.name} reads secrets docs/airflow.md never creates"


def test_the_spool_volume_is_mounted_where_the_transport_spools(values):
    spool_dir = json.loads(values["config"]["openlineage"]["transport"])["spool_dir"]
    [mount] = [m for m in values["volumeMounts"] if m["mountPath"] == spool_dir]
    [volume] = [v for v in values["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"], "a claim that outlives the pod, not an emptyDir"


def test_no_lineage_store_credentials_and_no_token_in_the_file():
    text = VALUES.read_text()
    assert "LINEAGE_DATABASE_URL" not in text and "LINEAGE_MIGRATION_DATABASE_URL" not in text
    assert not re.search(r"lin_[0-9a-f]{12}_", text), "a real-looking API token in the values file"
    assert not re.search(r"postgres(ql)?(\+\w+)?://[^\s\"']*:[^\s\"'@]+@", text), "a database password in the values file"
