"""People: OIDC bearer tokens verified against a JWKS, and identities vouched for by a trusted proxy.

A locally generated RSA key stands in for the identity provider; its public half is the JWKS
file the server is configured with.  Roles come from grants in the store, never from the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lineage.auth import grants
from lineage.errors import ConfigError
from tests_support import LiveServer

ISS, AUD = "https://idp.example.com", "lineage"


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp():
    key = _rsa()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, {"keys": [{**jwk, "kid": "k1", "use": "sig"}]}


def _token(key, kid="k1", alg="RS256", **claims):
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "sub": "u-1", "email": "Alice@Example.com", "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict, key: bytes | None = None) -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    sig = _b64(hmac.new(key, head.encode(), hashlib.sha256).digest()) if key is not None else ""
    return head + "." + sig


@pytest.fixture
def oidc_server(idp, settings, db, tmp_path):
    _, jwks = idp
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    s = settings.model_copy(update={"oidc_issuer": ISS, "oidc_audience": AUD, "oidc_jwks_file": path})
    from lineage.api.app import create_app

    with LiveServer(create_app(s, db=db)) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _get(c, token, path="/api/v1/auth/whoami"):
    return c.get(path, headers={"Authorization": f"Bearer {token}"})


def test_a_valid_oidc_token_is_the_person_with_the_roles_granted_to_them(oidc_server, idp, db):
    key, _ = idp
    r = _get(oidc_server, _token(key))
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "alice@example.com", "credential": f"oidc:{ISS}#u-1", "roles": [], "namespaces": None}
    assert _get(oidc_server, _token(key), "/api/v1/namespaces").status_code == 403  # authenticated, no role yet
    with db.connection() as conn:
        grants.grant(conn, "ALICE@example.com", "viewer", "admin")
    assert _get(oidc_server, _token(key), "/api/v1/namespaces").status_code == 200
    # Roles claimed inside the token count for nothing.
    assert _get(oidc_server, _token(key, roles=["admin"], groups=["admin"]), "/api/v1/auth/tokens").status_code == 403


def test_tokens_the_idp_did_not_issue_for_us_are_refused(oidc_server, idp):
    key, jwks = idp
    now = int(time.time())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": ISS, "aud": AUD, "sub": "u-1", "email": "alice@example.com", "exp": now + 300}
    cases = {
        "wrong issuer": _token(key, iss="https://evil.example.com"),
        "wrong audience": _token(key, aud="another-app"),
        "expired": _token(key, iat=now - 4000, exp=now - 3600),
        "not yet valid": _token(key, nbf=now + 3600),
        "no exp": _token(key, exp=None),
        "no aud": _token(key, aud=None),
        "signed by another key": _token(_rsa()),
        "unknown kid": _token(key, kid="k2"),
        "alg none": _unsigned({"alg": "none", "typ": "JWT", "kid": "k1"}, claims),
        "HS256 with the public key as secret": _unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims, public_pem),
        "HS256 with the JWK's modulus as secret": _unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims, jwks["keys"][0]["n"].encode()),
        "zero-width name": _token(key, email="alice@example.com\u200b"),
        "no name claim": _token(key, email=None),
        "garbage": "not.a.jwt",
    }
    for label, token in cases.items():
        r = _get(oidc_server, token)
        assert r.status_code == 401, (label, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer"), label


def test_oidc_settings_that_cannot_work_stop_the_app_at_start(settings, tmp_path):
    from lineage.auth.authenticate import Authenticator

    oct_only = tmp_path / "oct.json"
    oct_only.write_text(json.dumps({"keys": [{"kty": "oct", "k": _b64(b"s" * 32), "kid": "k"}]}))
    for update, needle in (
        ({"oidc_issuer": ISS}, "AUDIENCE"),
        ({"oidc_issuer": ISS, "oidc_audience": AUD}, "JWKS"),
        ({"oidc_issuer": ISS, "oidc_audience": AUD, "oidc_jwks_file": tmp_path / "missing.json"}, "missing.json"),
        ({"oidc_issuer": ISS, "oidc_audience": AUD, "oidc_jwks_file": oct_only}, "no RSA, EC or OKP"),
    ):
        with pytest.raises(ConfigError, match=needle):
            Authenticator(settings.model_copy(update=update))


# -- the authenticating proxy -------------------------------------------------------------------


def _proxy_server(settings, db, trusted):
    from lineage.api.app import create_app

    return LiveServer(create_app(settings.model_copy(update={"trusted_proxies": trusted}), db=db))


def test_the_proxy_header_is_believed_only_from_a_trusted_peer(settings, db):
    with db.connection() as conn:
        grants.grant(conn, "bob@example.com", "auditor", "admin")
    header = {"X-Forwarded-User": "Bob@Example.com"}
    with _proxy_server(settings, db, ["127.0.0.0/8"]) as server:
        r = httpx.get(f"{server.url}/api/v1/auth/whoami", headers=header)
        assert r.json() == {"name": "bob@example.com", "credential": "proxy:bob@example.com", "roles": ["auditor"], "namespaces": None}
        assert httpx.get(f"{server.url}/api/v1/gate/decisions", headers=header).status_code == 200
        # A presented credential that fails is not downgraded to the header.
        bad = {**header, "Authorization": "Bearer lin_000000000000_" + "A" * 43}
        assert httpx.get(f"{server.url}/api/v1/auth/whoami", headers=bad).status_code == 401
        assert httpx.get(f"{server.url}/api/v1/auth/whoami", headers={"X-Forwarded-User": "bob@example.com\u200b".encode()}).status_code == 401
    with _proxy_server(settings, db, ["10.0.0.0/8"]) as server:  # we are not the proxy
        r = httpx.get(f"{server.url}/api/v1/gate/decisions", headers=header)
        assert r.status_code == 401 and "no credential" in r.json()["message"]
    with _proxy_server(settings, db, []) as server:
        assert httpx.get(f"{server.url}/api/v1/auth/whoami", headers=header).status_code == 401


def test_peer_matching_handles_cidrs_ipv6_and_mapped_addresses(settings):
    from lineage.auth.authenticate import Authenticator

    a = Authenticator(settings.model_copy(update={"trusted_proxies": ["10.1.0.0/16", "fd00::1"]}))
    assert a.trusts_peer("10.1.2.3") and a.trusts_peer("::ffff:10.1.2.3") and a.trusts_peer("fd00::1")
    assert not a.trusts_peer("10.2.0.1") and not a.trusts_peer("fd00::2") and not a.trusts_peer("unix-socket") and not a.trusts_peer(None)


def test_trusted_proxies_setting_is_read_from_the_environment_and_checked(monkeypatch):
    from pydantic import ValidationError

    from lineage.config import Settings

    monkeypatch.setenv("LINEAGE_TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16")
    assert Settings().trusted_proxies == ["10.0.0.5", "10.1.0.0/16"]
    monkeypatch.setenv("LINEAGE_TRUSTED_PROXIES", "10.0.0.5,proxy.example.com")
    with pytest.raises(ValidationError, match="proxy.example.com"):
        Settings()


@pytest.mark.parametrize("verified", [False, "false", 0])
def test_regression_an_unverified_email_names_nobody(oidc_server, idp, db, verified):
    """An IdP that lets users edit their email (Azure AD's mutable `email`, a self-service
    Keycloak profile) says so with `email_verified: false`; believing the address would let a
    user name themselves the DPO and receive the DPO's grants."""
    key, _ = idp
    with db.connection() as conn:
        grants.grant(conn, "dpo@example.com", "steward", "admin")
    r = _get(oidc_server, _token(key, email="dpo@example.com", email_verified=verified))
    assert r.status_code == 401 and "email_verified" in r.json()["message"], r.text
    assert _get(oidc_server, _token(key, email="dpo@example.com", email_verified=True)).json()["roles"] == ["steward"]
