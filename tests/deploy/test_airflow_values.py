"""The Airflow Helm chart values (deploy/airflow-values-*.yaml) say what docs/airflow.md says,
and use only keys of the official chart.

No Helm and no cluster here, so what can drift is checked: each file parses as YAML; every
key path it sets is a key of the official chart's values (CHART_KEYS below, copied from
apache/airflow ``chart/values.yaml`` at commit d6ba4817823e8ffd2d3f676fc92aa7381e7d30f0, the
chart for Airflow 3.1; ``config`` is the chart's free-form airflow.cfg); its
``config.openlineage.*`` is the documented transport, namespace, thread and emission policy
(the doc's block run with the file's URL and spool directory); the secrets it reads are the
ones the doc's ``kubectl create secret`` lines create; the spool is on a volume at the
transport's spool directory for the workers; and no credential of the lineage store is in it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

import deploy_files

sys.path.insert(0, str(deploy_files.REPO / "tests" / "airflow"))  # for `import scheduler_harness`

import scheduler_harness as harness  # noqa: E402

VALUES = {"kubernetes": deploy_files.DEPLOY / "airflow-values-kubernetes.yaml",
          "celery": deploy_files.DEPLOY / "airflow-values-celery.yaml"}

# Key paths of the official chart's values.yaml (see the module docstring) that these files
# may set. A path ending in "[]" is a list whose items are Kubernetes objects or the chart's
# {name,value} / {envName,secretName,secretKey} records, checked separately.
CHART_KEYS = {
    "airflowVersion", "images.airflow.repository", "images.airflow.tag", "executor",
    "data.metadataSecretName", "postgresql.enabled", "redis.enabled", "jwtSecretName",
    "env[]", "secret[]", "volumes[]", "volumeMounts[]",
    "workers.replicas", "workers.persistence.enabled", "workers.persistence.size",
    "workers.volumeClaimTemplates[]", "workers.extraVolumes[]", "workers.extraVolumeMounts[]",
    "scheduler.extraVolumes[]", "scheduler.extraVolumeMounts[]",
    "dagProcessor.enabled", "dagProcessor.extraVolumes[]", "dagProcessor.extraVolumeMounts[]",
}
FREE_FORM = ("config",)  # airflow.cfg sections and keys


def _paths(node, prefix: str = ""):
    """Leaf key paths of ``node``; a list ends the path with ``[]``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if path in FREE_FORM:
                continue
            yield from _paths(value, path)
    elif isinstance(node, list):
        yield prefix + "[]"
    else:
        yield prefix


@pytest.fixture(scope="module", params=sorted(VALUES))
def values(request) -> dict:
    return yaml.safe_load(VALUES[request.param].read_text())


def _documented(transport: dict) -> dict[str, str]:
    """The doc's environment block, run with the values file's server URL and spool directory."""
    site = {name: "x" for name in harness.site_names(harness.doc_block())}
    site.update({"LINEAGE_SERVER": transport["url"], "LINEAGE_SPOOL": transport["spool_dir"]})
    return harness.doc_environment(site)


def test_every_key_is_a_key_of_the_official_chart(values):
    unknown = set(_paths(values)) - CHART_KEYS
    assert unknown == set(), f"not keys of the chart's values.yaml: {sorted(unknown)}"


def test_the_key_check_catches_a_misspelt_key():
    assert set(_paths({"workers": {"extraVolumeMount": []}, "execuotr": "x"})) - CHART_KEYS == {
        "workers.extraVolumeMount[]", "execuotr"}


def test_list_items_have_the_charts_shapes(values):
    assert all(set(e) == {"name", "value"} for e in values["env"])
    assert all(set(s) == {"envName", "secretName", "secretKey"} for s in values["secret"])
    for path in ("volumeMounts", "workers.extraVolumeMounts", "scheduler.extraVolumeMounts", "dagProcessor.extraVolumeMounts"):
        node = values
        for part in path.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        for mount in node or []:
            assert set(mount) <= {"name", "mountPath", "readOnly", "subPath"} and mount["mountPath"].startswith("/"), path


def test_executor_matches_the_file(values):
    assert values["executor"] in ("KubernetesExecutor", "CeleryExecutor")
    assert values["redis"]["enabled"] is (values["executor"] == "CeleryExecutor"), "Redis is Celery's broker only"
    assert values["images"]["airflow"]["tag"].startswith(values["airflowVersion"] + "-")


def test_openlineage_config_is_the_documented_transport(values):
    openlineage = values["config"]["openlineage"]
    transport = json.loads(openlineage["transport"])
    doc = _documented(transport)
    assert transport == json.loads(doc["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert openlineage["namespace"] == doc["AIRFLOW__OPENLINEAGE__NAMESPACE"]
    assert openlineage["execute_in_thread"].lower() == doc["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"].lower() == "true"
    assert json.loads(openlineage["emission_policy"]) == json.loads(doc["AIRFLOW__OPENLINEAGE__EMISSION_POLICY"])
    # The transport reaches the lineage Service of deploy/kubernetes.
    assert transport["url"] == "http://lineage.lineage.svc.cluster.local:5000"


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
    assert uncovered == set(), "set by docs/airflow.md but not by the values file"
    assert values["executor"] and values["data"]["metadataSecretName"] and values["jwtSecretName"]
    assert plain_env["LINEAGE_URL"] == transport["url"]
    assert {"AIRFLOW_CONN_LINEAGE_EMITTER", "LINEAGE_TOKEN"} <= secret_env, "tokens come from Secrets"
    assert values["config"]["core"]["execution_api_server_url"].endswith("/execution/")


def _created_secrets() -> dict[str, set[str]]:
    created: dict[str, set[str]] = {}
    for name, args in re.findall(r"kubectl (?:-n airflow )?create secret generic (\S+)((?:.*\\\n)*.*)", harness.DOC.read_text()):
        created.setdefault(name, set()).update(re.findall(r"--from-literal=([\w-]+)=", args))
    return created


def test_secrets_are_the_ones_the_doc_creates(values):
    used = {(s["secretName"], s["secretKey"]) for s in values["secret"]}
    used |= {(values["data"]["metadataSecretName"], "connection"), (values["jwtSecretName"], "jwt-secret")}
    created = _created_secrets()
    missing = {(name, key) for name, key in used if key not in created.get(name, set())}
    assert missing == set(), "the values file reads secrets docs/airflow.md never creates"


def test_the_workers_spool_is_on_a_volume_that_outlives_the_pod(values):
    spool_dir = json.loads(values["config"]["openlineage"]["transport"])["spool_dir"]
    if values["executor"] == "KubernetesExecutor":
        # Every container, task pods included: one ReadWriteMany claim, made by deploy/airflow-spool.yaml.
        [mount] = [m for m in values["volumeMounts"] if m["mountPath"] == spool_dir]
        [volume] = [v for v in values["volumes"] if v["name"] == mount["name"]]
        claim = volume["persistentVolumeClaim"]["claimName"]
        [pvc] = [o for o in yaml.safe_load_all((deploy_files.DEPLOY / "airflow-spool.yaml").read_text())
                 if o["kind"] == "PersistentVolumeClaim"]
        assert pvc["metadata"]["name"] == claim and pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    else:
        # Each Celery worker: a claim of its own from the StatefulSet's templates.
        workers = values["workers"]
        assert workers["persistence"]["enabled"] is True, "volumeClaimTemplates need the StatefulSet"
        [mount] = [m for m in workers["extraVolumeMounts"] if m["mountPath"] == spool_dir]
        assert mount["name"] in {t["metadata"]["name"] for t in workers["volumeClaimTemplates"]}
        assert spool_dir not in {m["mountPath"] for m in values.get("volumeMounts", [])}, "one mount per path"
        for component in ("scheduler", "dagProcessor"):  # writable where they emit, at least
            assert spool_dir in {m["mountPath"] for m in values[component]["extraVolumeMounts"]}, component


def test_the_spool_replay_cronjob_validates_and_reads_a_created_secret(tmp_path):
    import subprocess

    path = deploy_files.DEPLOY / "airflow-spool.yaml"
    result = subprocess.run([deploy_files.venv_tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [cron] = [o for o in yaml.safe_load_all(path.read_text()) if o["kind"] == "CronJob"]
    [container] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ref = next(e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] == "LINEAGE_TOKEN")
    assert ref["key"] in _created_secrets()[ref["name"]]
    assert container["image"].endswith(":3.3.2-lineage-0.1.0")


def test_no_lineage_store_credentials_and_no_token_in_the_files():
    for path in [*VALUES.values(), deploy_files.DEPLOY / "airflow-spool.yaml"]:
        text = path.read_text()
        assert "LINEAGE_DATABASE_URL" not in text and "LINEAGE_MIGRATION_DATABASE_URL" not in text, path.name
        assert not re.search(r"lin_[0-9a-f]{12}_", text), f"{path.name}: a real-looking API token"
        assert not re.search(r"postgres(ql)?(\+\w+)?://[^\s\"']*:[^\s\"'@]+@", text), f"{path.name}: a database password"
