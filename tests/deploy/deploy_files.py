"""The deployment files, read as data: what each process runs, rendered manifests, compose.

Shared by tests/deploy and by any test that starts the processes the deployment starts
(:func:`commands` gives each one's ``lineage`` argv exactly as the files say it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZATIONS = {"base": DEPLOY / "kubernetes" / "base", "overlay": DEPLOY / "kubernetes" / "overlays" / "example"}
DOCKERFILES = [REPO / "Dockerfile", DEPLOY / "airflow.Dockerfile"]
COMPOSE = REPO / "compose.yaml"


def venv_tool(name: str) -> str:
    """A console script installed beside this interpreter (hadolint, kubernetes-validate, lineage)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def render(kustomization: Path) -> list[dict]:
    """``kubectl kustomize DIR``: the objects that ``kubectl apply -k DIR`` would send."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not installed: run `make kubectl` (Debian's kubernetes-client)")
    out = subprocess.run([kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def dockerfile_cmd() -> list[str]:
    """The image's default command (its CMD, after the ``lineage`` ENTRYPOINT)."""
    text = (REPO / "Dockerfile").read_text()
    assert json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1)) == ["lineage"]
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))


def readme_commands() -> dict[str, list[str]]:
    """The ``lineage`` command lines README's *Deploy* section tells people to run, as arguments."""
    import shlex

    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Deploy\n"):]
    section = section[:section.index("\n## ", 1)]
    found: dict[str, list[str]] = {}
    for i, args in enumerate(re.findall(r'"args": (\[[^\]]*\])', section)):
        found[f"readme/kubectl-run-{i}"] = json.loads(args)
    for i, line in enumerate(re.findall(r"^docker compose run --rm \S+ (.*?)(?:\s+#.*)?$", section, re.M)):
        found[f"readme/compose-run-{i}"] = shlex.split(line)
    for i, line in enumerate(re.findall(r"^lineage (.*)$", section, re.M)):
        found[f"readme/lineage-{i}"] = shlex.split(line)
    return found


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """``{"Kind/name": pod spec}`` of every workload among ``objects``."""
    specs = {}
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            specs[f"{obj['kind']}/{obj['metadata']['name']}"] = spec["template"]["spec"]
    return specs


def commands() -> dict[str, list[str]]:
    """Every process the deployment files start, as ``lineage`` arguments:
    ``{"Dockerfile": [...], "compose/api-1": [...], "k8s/Deployment/lineage-api/api": [...], ...}``."""
    found = {"Dockerfile": dockerfile_cmd()}
    for name, service in compose()["services"].items():
        if "command" in service:
            found[f"compose/{name}"] = service["command"]
    for workload, spec in pod_specs(render(KUSTOMIZATIONS["base"])).items():
        for container in spec["containers"]:
            found[f"k8s/{workload}/{container['name']}"] = container["args"]
    # The Airflow side's spool replay runs in the Airflow image, by its full command.
    for workload, spec in pod_specs(list(yaml.safe_load_all((DEPLOY / "airflow-spool.yaml").read_text()))).items():
        for container in spec["containers"]:
            assert container["command"][0] == "lineage"
            found[f"airflow/{workload}/{container['name']}"] = container["command"][1:]
    return found
