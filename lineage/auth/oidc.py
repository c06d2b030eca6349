"""OIDC bearer tokens: JWTs from the organisation's identity provider, verified with PyJWT.

Configured by ``LINEAGE_OIDC_ISSUER``, ``LINEAGE_OIDC_AUDIENCE`` and exactly one of
``LINEAGE_OIDC_JWKS_URL`` (fetched and cached by :class:`jwt.PyJWKClient`) or
``LINEAGE_OIDC_JWKS_FILE`` (a local JWKS JSON).  A token is accepted only when:

* its signing key is in the JWKS (by ``kid``; a JWKS of one key serves tokens without one)
  and is asymmetric (RSA, EC or OKP; a symmetric ``oct`` key in the set is never used);
* its ``alg`` is one that key type signs with.  The list passed to :func:`jwt.decode` is built
  from the key, never from the token, so ``alg: none`` and the classic confusion attack (an
  ``HS256`` token "signed" with the RSA public key as an HMAC secret) are refused;
* the signature verifies and ``iss``, ``aud`` and ``exp`` are present and right (``nbf`` is
  checked when present), with 30 s of leeway for clock skew;
* the name claim (``LINEAGE_OIDC_NAME_CLAIM``, default ``email``) holds a name that
  :func:`lineage.auth.normalise_name` accepts, and, for ``email``, the token does not say
  ``email_verified`` is anything but ``true`` (a user-edited address names nobody).

The person's roles are not taken from the token: they come from role grants in the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt

from lineage.auth.errors import Unauthenticated
from lineage.auth.principal import normalise_name
from lineage.config import Settings
from lineage.errors import BadRequest, ConfigError, LineageError

_ALGORITHMS = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
LEEWAY_SECONDS = 30


class IdentityProviderUnavailable(LineageError):
    """The JWKS could not be fetched: nobody can be verified, so nobody is let in (503)."""

    status = 503


@dataclass(frozen=True)
class OidcIdentity:
    name: str  # normalised
    credential: str  # oidc:ISSUER#SUBJECT
    expires: datetime  # the token's `exp`


class OidcVerifier:
    """Verifies bearer JWTs against one issuer, audience and key set."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.name_claim = settings.oidc_name_claim
        if not self.issuer or not self.audience:
            raise ConfigError("OIDC needs both LINEAGE_OIDC_ISSUER and LINEAGE_OIDC_AUDIENCE")
        if (settings.oidc_jwks_url is None) == (settings.oidc_jwks_file is None):
            raise ConfigError("OIDC needs exactly one of LINEAGE_OIDC_JWKS_URL or LINEAGE_OIDC_JWKS_FILE")
        self._client: jwt.PyJWKClient | None = None
        self._keys: list[jwt.PyJWK] = []
        if settings.oidc_jwks_url:
            self._client = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True, lifespan=300, timeout=5)
        else:
            path = settings.oidc_jwks_file
            try:
                data = json.loads(path.read_text())  # type: ignore[union-attr]
                self._keys = [k for k in jwt.PyJWKSet.from_dict(data).keys if k.key_type in _ALGORITHMS]
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise ConfigError(f"LINEAGE_OIDC_JWKS_FILE {path}: not a readable JWKS ({type(exc).__name__}: {exc})") from None
            if not self._keys:
                raise ConfigError(f"LINEAGE_OIDC_JWKS_FILE {path}: holds no RSA, EC or OKP signing key")

    def _key(self, token: str, header: dict) -> jwt.PyJWK:
        kid = header.get("kid")
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as exc:
                raise IdentityProviderUnavailable(f"the identity provider's keys could not be fetched ({type(exc).__name__}); retry shortly") from None
            except jwt.PyJWKClientError:
                raise Unauthenticated("the token's signing key is not among the identity provider's keys") from None
        if kid is None:
            if len(self._keys) == 1:
                return self._keys[0]
            raise Unauthenticated("the token names no signing key (`kid`)")
        for key in self._keys:
            if key.key_id == kid:
                return key
        raise Unauthenticated("the token's signing key is not among the identity provider's keys")

    def verify(self, token: str) -> OidcIdentity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is neither an API token (`lin_...`) nor a JWT") from None
        key = self._key(token, header)
        allowed = _ALGORITHMS.get(key.key_type, ())
        if header.get("alg") not in allowed:
            raise Unauthenticated(f"the token's algorithm `{header.get('alg')}` is not accepted for this key")
        try:
            claims = jwt.decode(
                token, key=key.key, algorithms=list(allowed), audience=self.audience, issuer=self.issuer,
                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the OIDC token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the OIDC token was refused ({type(exc).__name__})") from None
        raw = claims.get(self.name_claim)
        # An IdP that lets users edit their address marks it `email_verified: false`; such an
        # address names whoever typed it, so it names nobody here.  (Absent: the IdP does not
        # say, as Azure AD's `upn`-style setups do; then the issuer is trusted for it.)
        if self.name_claim == "email" and "email_verified" in claims and claims["email_verified"] is not True:
            raise Unauthenticated("the OIDC token's email is not verified (`email_verified` is not true)")
        if not isinstance(raw, str):
            raise Unauthenticated(f"the OIDC token carries no `{self.name_claim}` claim naming the person")
        try:
            name = normalise_name(raw, self.name_claim)
        except BadRequest as exc:
            raise Unauthenticated(f"the token's `{self.name_claim}` claim is not a usable name ({exc.reason})") from None
        expires = datetime.fromtimestamp(int(claims["exp"]), timezone.utc)
        return OidcIdentity(name, f"oidc:{claims['iss']}#{claims.get('sub', name)}", expires)
