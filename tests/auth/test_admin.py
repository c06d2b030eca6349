"""Identity administration: tokens and grants over HTTP and the CLI, the local admin token, and
``lineage serve`` refusing an exposed address without authentication."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import httpx
import pytest

from lineage.errors import ConfigError

LINEAGE = [sys.executable, "-m", "lineage.cli"]


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_creates_a_token_shown_once_that_works_until_revoked(client, anon_client, db):
    r = client.post("/api/v1/auth/tokens", json={"name": "ci", "principal": "CI@Example.com", "roles": ["viewer"],
                                                 "expiresAt": "2099-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    secret = created["token"]
    assert created["principal"] == "ci@example.com" and created["createdBy"] == "tester@example.com"
    assert created["expiresAt"] == "2099-01-01T00:00:00.000000Z"
    assert anon_client.get("/api/v1/namespaces", headers=_bearer(secret)).status_code == 200
    listed = client.get("/api/v1/auth/tokens").text
    assert secret.split("_", 2)[2] not in listed and '"token"' not in listed
    assert client.post("/api/v1/auth/tokens", json={"name": "ci", "principal": "x", "roles": ["viewer"]}).status_code == 409
    revoked = client.post("/api/v1/auth/tokens/ci/revoke").json()
    assert revoked["revokedBy"] == "tester@example.com"
    r = anon_client.get("/api/v1/namespaces", headers=_bearer(secret))
    assert r.status_code == 401 and "revoked" in r.json()["message"]


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "principal": "p", "roles": ["root"]}, "roles"),
    ({"name": "x", "principal": "p\u200b", "roles": ["viewer"]}, "principal"),
    ({"name": "x", "principal": "p", "roles": ["viewer"], "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
    ({"name": "x", "principal": "p"}, "body.roles"),
])
def test_bad_token_requests_are_400_naming_the_field(client, body, field):
    r = client.post("/api/v1/auth/tokens", json=body)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, r.text


def test_grants_are_appended_and_decide_a_persons_roles(client, db):
    assert client.post("/api/v1/auth/grants", json={"principal": "Carol@Example.com", "role": "steward"}).status_code == 201
    assert client.post("/api/v1/auth/grants", json={"principal": "carol@example.com", "role": "steward"}).status_code == 409
    assert [g["role"] for g in client.get("/api/v1/auth/grants", params={"principal": "carol@example.com"}).json()["grants"]] == ["steward"]
    r = client.post("/api/v1/auth/grants/revoke", json={"principal": "carol@example.com", "role": "steward", "reason": "left"})
    assert r.json() == {"principal": "carol@example.com", "roles": []}
    assert client.get("/api/v1/auth/grants").json()["grants"] == []
    with db.connection() as conn:  # the history stays
        rows = conn.execute("SELECT action, actor FROM role_grants WHERE principal = 'carol@example.com' ORDER BY id").fetchall()
    assert rows == [("grant", "tester@example.com"), ("revoke", "tester@example.com")]
    r = client.post("/api/v1/auth/grants", json={"principal": "carol\u200b@example.com", "role": "steward"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "principal"


# -- secure by default ------------------------------------------------------------------------


def test_serve_refuses_an_exposed_address_until_authentication_is_configured(settings, db):
    from lineage.auth import tokens
    from lineage.auth.local import prepare_serve

    exposed = settings.model_copy(update={"host": "0.0.0.0"})
    with pytest.raises(ConfigError) as err:
        prepare_serve(exposed)
    for setting in ("LINEAGE_OIDC_ISSUER", "LINEAGE_TRUSTED_PROXIES", "--bootstrap", "0.0.0.0"):
        assert setting in err.value.message
    prepare_serve(settings)  # loopback: fine
    prepare_serve(exposed.model_copy(update={"trusted_proxies": ["10.0.0.1"]}))
    with db.connection() as conn:
        tokens.create(conn, name="viewer-only", principal="v", roles=["viewer"], created_by="t")
    with pytest.raises(ConfigError):
        prepare_serve(exposed)  # a token that is not an admin's does not count
    with db.connection() as conn:
        tokens.create(conn, name="first-admin", principal="ops", roles=["admin"], created_by="t")
    prepare_serve(exposed)
    assert not settings.admin_token_file.exists(), "no local token file for a configured (non-embedded) store"


def test_lineage_serve_on_0000_exits_with_a_clear_error(settings):
    env = {**os.environ, "LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": settings.database_url.get_secret_value()}
    done = subprocess.run(LINEAGE + ["serve", "--host", "0.0.0.0", "--port", "18701"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "LINEAGE_TRUSTED_PROXIES" in done.stderr and "Traceback" not in done.stderr


def test_the_local_admin_token_file_is_private_works_and_is_renewed_when_revoked(settings, db):
    from lineage.auth import tokens
    from lineage.auth.local import ensure_local_admin

    with db.connection() as conn:
        assert ensure_local_admin(conn, settings) is True
    path = settings.admin_token_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text().strip()
    with db.connection() as conn:
        p = tokens.authenticate(conn, first)
        assert p.name == "local-admin" and "admin" in p.roles and not p.has("steward", "requester")
        assert ensure_local_admin(conn, settings) is False and path.read_text().strip() == first
        tokens.revoke(conn, "local-admin", "someone")
    with db.connection() as conn:
        assert ensure_local_admin(conn, settings) is True
    second = path.read_text().strip()
    assert second != first and stat.S_IMODE(path.stat().st_mode) == 0o600
    with db.connection() as conn:
        assert tokens.authenticate(conn, second).credential == "token:local-admin-2"


# -- the CLI ----------------------------------------------------------------------------------


def _cli(args, settings, live_server, **env):
    full = {**os.environ, "LINEAGE_HOME": str(settings.home), "LINEAGE_DATABASE_URL": settings.database_url.get_secret_value(),
            "LINEAGE_URL": live_server.url, **env}
    full.pop("LINEAGE_TOKEN", None) if "LINEAGE_TOKEN" not in env else None
    return subprocess.run(LINEAGE + args, env=full, capture_output=True, text=True, timeout=120)


def test_cli_token_lifecycle_uses_the_local_admin_token_without_being_told(settings, db, live_server):
    from lineage.auth.local import ensure_local_admin

    r = _cli(["tokens", "list"], settings, live_server)
    assert r.returncode == 2 and "no token" in r.stderr  # nothing to authenticate with yet
    with db.connection() as conn:
        ensure_local_admin(conn, settings)
    r = _cli(["tokens", "create", "airflow", "--principal", "airflow", "--role", "emitter", "--namespace", "ml-pipeline"], settings, live_server)
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("lin_") and "\n" not in secret and secret not in r.stderr
    assert httpx.get(f"{live_server.url}/api/v1/auth/whoami", headers=_bearer(secret)).json()["namespaces"] == ["ml-pipeline"]
    listed = _cli(["tokens", "list"], settings, live_server).stdout
    assert "airflow" in listed and "local-admin" in listed and secret[-20:] not in listed
    assert _cli(["whoami"], settings, live_server, LINEAGE_TOKEN=secret).stdout.startswith("airflow (token:airflow): emitter")
    refused = _cli(["tokens", "list"], settings, live_server, LINEAGE_TOKEN=secret)
    assert refused.returncode == 2 and "403" in refused.stderr and "`admin`" in refused.stderr
    assert _cli(["tokens", "revoke", "airflow"], settings, live_server).returncode == 0
    assert httpx.get(f"{live_server.url}/api/v1/auth/whoami", headers=_bearer(secret)).status_code == 401
    assert _cli(["grants", "add", "Dana@Example.com", "steward"], settings, live_server).returncode == 0
    assert "dana@example.com" in _cli(["grants", "list"], settings, live_server).stdout
    assert "now holds: no role" in _cli(["grants", "revoke", "dana@example.com", "steward"], settings, live_server).stdout


def test_cli_bootstrap_creates_the_first_admin_with_database_credentials(settings, live_server, tmp_path):
    r = _cli(["tokens", "create", "ops", "--principal", "ops@example.com", "--role", "admin", "--bootstrap", "--expires", "2099-12-31"],
             settings, live_server)
    assert r.returncode == 0, r.stderr
    me = httpx.get(f"{live_server.url}/api/v1/auth/whoami", headers=_bearer(r.stdout.strip())).json()
    assert me["name"] == "ops@example.com" and me["roles"] == ["admin"]


def test_help_stays_instant_and_lists_the_identity_commands(settings, live_server):
    out = _cli(["--help"], settings, live_server).stdout
    assert "tokens" in out and "grants" in out and "whoami" in out
    code = "import sys, lineage.cli; print(sorted(m for m in ('jwt', 'fastapi', 'psycopg', 'cryptography') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
