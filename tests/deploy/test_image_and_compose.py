"""The Dockerfiles pass hadolint (from PyPI) and keep their promises; compose.yaml validates
against the Compose specification (check-jsonschema's vendored schema, offline) and wires the
processes as the Kubernetes manifests do."""

from __future__ import annotations

import re
import subprocess

import pytest

import deploy_files
from lineage.config import Settings
from lineage.store.roles import Roles


def _hadolint(path) -> subprocess.CompletedProcess:
    return subprocess.run([deploy_files.venv_tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("dockerfile", deploy_files.DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = _hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_an_unpinned_root_image(tmp_path):
    """Proof that the lint can fail: an unpinned base, root, apt without pins."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nRUN apt-get update && apt-get install -y curl\nCMD lineage serve\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3002" in result.stdout


def _stages(text: str) -> list[str]:
    return re.split(r"^FROM ", text, flags=re.M)[1:]


@pytest.mark.parametrize("dockerfile", deploy_files.DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_to_a_release(dockerfile):
    for stage in _stages(dockerfile.read_text()):
        image = stage.split()[0]
        name, _, tag = image.partition(":")
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"{image}: pin a release (x.y.z), not a moving tag"


def test_image_runs_lineage_as_a_numeric_non_root_user_with_a_healthcheck():
    text = (deploy_files.REPO / "Dockerfile").read_text()
    final = _stages(text)[-1]
    assert final.startswith("python:3.11")
    users = re.findall(r"^USER (\S+)", final, re.M)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    # The uid the Kubernetes manifests run as is the image's.
    for spec in deploy_files.pod_specs(deploy_files.render(deploy_files.KUSTOMIZATIONS["base"])).values():
        assert str(spec["securityContext"]["runAsUser"]) == users[-1].split(":")[0]
    assert re.search(r"^HEALTHCHECK .*CMD", final, re.M | re.S)
    assert "ENV" in final and "LINEAGE_HOME=/var/lib/lineage" in final


def test_no_secret_goes_into_an_image():
    for path in deploy_files.DOCKERFILES:
        for line in path.read_text().splitlines():
            if re.match(r"^(ENV|ARG)\b", line.strip()):
                assert not re.search(r"(PASSWORD|TOKEN|SECRET|DATABASE_URL)", line, re.I), f"{path.name}: {line}"
    ignore = (deploy_files.REPO / ".dockerignore").read_text().splitlines()
    assert ignore[[i for i, l in enumerate(ignore) if l and not l.startswith("#")][0]] == "*", "allow-list, starting from nothing"
    allowed = {l[1:] for l in ignore if l.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "lineage/"}  # no .env, no LINEAGE_HOME, no .venv


def _compose_spec(path) -> subprocess.CompletedProcess:
    return subprocess.run([deploy_files.venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_file_validates_against_the_compose_specification():
    result = _compose_spec(deploy_files.COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_validation_fails_a_misspelt_condition(tmp_path):
    bad = tmp_path / "compose.yaml"
    bad.write_text(deploy_files.COMPOSE.read_text().replace("condition: service_healthy", "condtion: service_healthy"))
    assert _compose_spec(bad).returncode != 0


@pytest.fixture(scope="module")
def compose() -> dict:
    return deploy_files.compose()


def test_compose_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api-1", "api-2", "derive", "maintain"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api-1", "api-2", "derive", "maintain"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, name
    for name in ("postgres", "api-1", "api-2", "derive"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "/readyz" in " ".join(services["api-1"]["healthcheck"]["test"])
    assert "9400/healthz" in " ".join(services["derive"]["healthcheck"]["test"])
    assert services["migrate"]["restart"] == services["maintain"]["restart"] == "no"
    assert services["migrate"]["healthcheck"] == services["maintain"]["healthcheck"] == {"disable": True}
    ports = [p for n in ("api-1", "api-2") for p in services[n]["ports"]]
    assert all(p.startswith("127.0.0.1:") for p in ports) and len(set(ports)) == 2, "published on loopback, distinct"


def test_compose_owner_url_only_in_migrate_and_maintain_and_no_literal_password(compose):
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        if name == "postgres":
            continue
        assert "lineage_app:${LINEAGE_APP_PASSWORD:?" in env["LINEAGE_DATABASE_URL"], name
        if name in ("migrate", "maintain"):
            assert "lineage_owner:${LINEAGE_OWNER_PASSWORD:?" in env["LINEAGE_MIGRATION_DATABASE_URL"]
        else:
            assert "LINEAGE_MIGRATION_DATABASE_URL" not in env, f"{name} must not hold the owner's URL"
    for name in ("api-1", "api-2"):
        env = compose["services"][name]["environment"]
        assert env["LINEAGE_DERIVE_WORKERS"] == "0"
        assert env["LINEAGE_OIDC_ISSUER"] is None, "passed through when set, never an empty issuer"
    text = deploy_files.COMPOSE.read_text()
    assert not re.search(r"://[^\s:@/]+:(?!\$\{)[^\s@]+@", text), "a literal password in compose.yaml"
    assert all(re.search(r"\$\{\w+:\?", m) for m in re.findall(r"PASSWORD[^\n]*", text) if "${" in m)


def test_compose_environment_names_are_settings(compose):
    fields = {f"LINEAGE_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        if name != "postgres":
            assert set(service["environment"]) <= fields, name


def test_compose_postgres_creates_the_roles_the_settings_name():
    script = (deploy_files.DEPLOY / "compose" / "initdb.sh").read_text()
    roles = Roles()
    for role in (roles.owner, roles.app, roles.reader):
        assert f"CREATE ROLE {role} " in script
    assert f"CREATE DATABASE lineage OWNER {roles.owner}" in script
    assert "PASSWORD :'" in script and "$LINEAGE_" not in script.split("<<'SQL'")[1], "passwords as psql variables, not spliced"
