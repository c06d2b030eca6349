"""deploy/kubernetes renders (``kubectl kustomize``) and every object validates strictly offline
(``kubernetes-validate --strict``: unknown fields are errors), and the objects say what the
deployment promises: probes, non-root read-only containers, the owner's database URL only
where migrations run, an autoscaler and a disruption budget that find the API's pods."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

import deploy_files
from lineage.config import Settings

README = deploy_files.REPO / "README.md"


@pytest.fixture(scope="module", params=sorted(deploy_files.KUSTOMIZATIONS))
def rendered(request) -> list[dict]:
    return deploy_files.render(deploy_files.KUSTOMIZATIONS[request.param])


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return deploy_files.render(deploy_files.KUSTOMIZATIONS["base"])


def _one(objects, kind, name=None) -> dict:
    [obj] = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return obj


def _validate(tmp_path, objects) -> subprocess.CompletedProcess:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return subprocess.run([deploy_files.venv_tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
                          capture_output=True, text=True, timeout=300)


def test_every_object_validates_strictly(rendered, tmp_path):
    result = _validate(tmp_path, rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {o["kind"] for o in rendered}
    assert {"Deployment", "Service", "Job", "CronJob", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds


def test_the_validator_rejects_an_unknown_field_and_a_wrong_type(base, tmp_path):
    """Proof that the check above can fail: a typo'd field and a string where a number goes."""
    api = _one(base, "Deployment", "lineage-api")
    typo = yaml.safe_load(yaml.safe_dump(api))
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz", "port": 5000}
    assert _validate(tmp_path, [typo]).returncode != 0
    wrong = yaml.safe_load(yaml.safe_dump(api))
    wrong["spec"]["replicas"] = "two"
    assert _validate(tmp_path, [wrong]).returncode != 0


def test_api_probes_and_runs_without_in_process_derivation(rendered):
    api = _one(rendered, "Deployment", "lineage-api")["spec"]["template"]["spec"]["containers"][0]
    port = {p["name"]: p["containerPort"] for p in api["ports"]}["http"]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["args"] == ["serve", "--host", "0.0.0.0", "--port", str(port)]
    assert {"name": "LINEAGE_DERIVE_WORKERS", "value": "0"} in api["env"]


def test_derive_worker_liveness_is_its_healthz_on_9400(rendered):
    worker = _one(rendered, "Deployment", "lineage-derive")["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["derive", "--listen", "0.0.0.0:9400"]
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {"metrics": 9400}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_every_container_runs_as_non_root_on_a_read_only_root(rendered):
    for workload, spec in deploy_files.pod_specs(rendered).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec["securityContext"]["runAsUser"] != 0, workload
        assert spec["automountServiceAccountToken"] is False, workload
        writable = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, workload
            assert sc["capabilities"]["drop"] == ["ALL"], workload
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"], workload
            # What lineage writes (LINEAGE_HOME, temporary files) is on a pod-local volume.
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts.get("/tmp") in writable and mounts.get("/var/lib/lineage") in writable, workload


def _secret_refs(container) -> dict[str, tuple[str, str]]:
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


def test_owner_url_only_where_migrations_and_partitions_are_made(rendered):
    seen = {}
    for workload, spec in deploy_files.pod_specs(rendered).items():
        for c in spec["containers"]:
            refs = _secret_refs(c)
            seen[workload] = refs
            assert refs["LINEAGE_DATABASE_URL"][0] == "lineage-db", workload
            if c["args"][0] in ("db", "maintain"):
                assert refs["LINEAGE_MIGRATION_DATABASE_URL"][0] == "lineage-db-owner", workload
            else:
                assert "LINEAGE_MIGRATION_DATABASE_URL" not in refs, f"{workload} must not hold the owner's URL"
    assert len(seen) == 4


def test_no_secret_material_in_the_repository(rendered):
    assert [o for o in rendered if o["kind"] == "Secret"] == [], "Secrets are created with kubectl, not committed"
    text = "\n".join(p.read_text() for p in deploy_files.DEPLOY.joinpath("kubernetes").rglob("*") if p.is_file())
    assert not re.search(r"postgres(ql)?://[^\s:@/]+:[^\s@]+@", text), "a database password in deploy/kubernetes"


def test_the_secrets_read_are_the_ones_the_readme_creates(base):
    text = README.read_text()
    created: dict[str, set[str]] = {}
    for name, args in re.findall(r"kubectl -n lineage create secret generic (\S+)((?:.*\\\n)*.*)", text):
        created[name] = set(re.findall(r"--from-literal=([\w-]+)=", args))
    used = {ref for spec in deploy_files.pod_specs(base).values() for c in spec["containers"] for ref in _secret_refs(c).values()}
    assert used and {(n, k) for n, k in used if k not in created.get(n, set())} == set()


def test_service_pdb_and_hpa_find_the_api(rendered):
    api = _one(rendered, "Deployment", "lineage-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    service = _one(rendered, "Service", "lineage")
    assert service["metadata"]["namespace"] == "lineage"  # http://lineage.lineage.svc.cluster.local:5000
    assert set(service["spec"]["selector"].items()) <= set(labels.items())
    assert service["spec"]["ports"] == [{"name": "http", "port": 5000, "targetPort": "http"}]
    pdb = _one(rendered, "PodDisruptionBudget", "lineage-api")
    assert set(pdb["spec"]["selector"]["matchLabels"].items()) <= set(labels.items())
    hpa = _one(rendered, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "lineage-api"}
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"], "a drain must leave one API pod serving"
    # Not a selector that would also match the worker's or the jobs' pods.
    others = [o for o in rendered if o["kind"] in ("Deployment", "Job") and o is not api]
    for other in others:
        theirs = other["spec"]["template"]["metadata"]["labels"]
        assert not set(service["spec"]["selector"].items()) <= set(theirs.items()), other["metadata"]["name"]


def test_migration_job_and_maintenance_cronjob(rendered):
    job = _one(rendered, "Job", "lineage-migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    cron = _one(rendered, "CronJob", "lineage-maintain")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["maintain", "partitions"]


def test_configmap_holds_only_real_settings_and_they_parse(rendered):
    config = _one(rendered, "ConfigMap")["data"]
    fields = {f"LINEAGE_{name.upper()}" for name in Settings.model_fields}
    assert set(config) <= fields, f"not settings of lineage/config.py: {set(config) - fields}"
    settings = Settings(**{k[len("LINEAGE_"):].lower(): v for k, v in config.items()})
    assert settings.oidc_enabled and settings.oidc_audience  # authentication configured: serve may bind 0.0.0.0
    base_env = (deploy_files.KUSTOMIZATIONS["base"] / "config.env").read_text()
    commented = set(re.findall(r"^# (LINEAGE_\w+)=", base_env, re.M))
    assert commented <= fields, f"documented but not settings: {commented - fields}"


def test_every_workload_uses_the_one_image(rendered):
    images = {c["image"] for spec in deploy_files.pod_specs(rendered).values() for c in spec["containers"]}
    assert images == {"registry.example.com/ml-platform/lineage:0.1.0"}
