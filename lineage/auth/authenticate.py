"""From a request's credentials to a :class:`~lineage.auth.Principal`, or a refusal.

:class:`Authenticator` is built once per app from settings and asked once per request with
what the request carries: its ``Authorization`` header, the configured proxy identity header,
and the TCP peer's address.  The order:

1. ``Authorization: Bearer lin_...``: an API token (:mod:`lineage.auth.tokens`); its roles and
   namespace scope are the token's own.
2. ``Authorization: Bearer <JWT>``: an OIDC token (:mod:`lineage.auth.oidc`), when OIDC is
   configured; roles from role grants (:mod:`lineage.auth.grants`).
3. No ``Authorization`` header, and the proxy identity header
   (``LINEAGE_PROXY_USER_HEADER``, default ``X-Forwarded-User``) sent by a peer in
   ``LINEAGE_TRUSTED_PROXIES``: that person, roles from role grants.  The header from any
   other peer is ignored, exactly as if it were absent.

Any other ``Authorization`` (another scheme, an empty token) or none at all is
:class:`~lineage.auth.errors.Unauthenticated`.  A presented credential that fails is never
"downgraded" to the proxy header: a bad token is a 401 even behind a trusted proxy.

**A short positive cache, and its staleness bound.**  Looking a token up costs a store round
trip on every request (about 7% of a single-event ingest; ``benchmarks/auth_cost.py``).  So a
credential this process verified within the last :data:`FRESH_SECONDS` (2 s) is accepted
again without asking the store, with the roles it had then.  Only successes are cached, keyed
by the SHA-256 of what the request presented (never the credential itself), and never past the
credential's own expiry.  Revoking a token or granting or revoking a role *through this
process* (:func:`lineage.auth.tokens.revoke`, :mod:`lineage.auth.grants`) calls
:func:`invalidate`, which empties every cache at once: the very next request is checked
against the store.  A revocation made by *another* process (another server worker, or a
direct write to the store) takes effect here within :data:`FRESH_SECONDS`.  That is the
bound: a revoked credential may be honoured for at most 2 s by a process that did not
revoke it.

When the store is *unreachable*, a credential this process verified within the last
:data:`STALE_SECONDS` is still accepted with the roles it had (nothing else can be written
then; what matters is that the gate can still answer, and record, its fail-closed refusal);
any other credential gets the store's 503.  :func:`invalidate` forgets these as well.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Callable, ContextManager

import psycopg

from lineage.auth import grants, tokens
from lineage.auth.errors import Unauthenticated
from lineage.auth.principal import Principal, normalise_name
from lineage.config import Settings
from lineage.errors import BadRequest, StoreUnavailable

STALE_SECONDS = 300.0
FRESH_SECONDS = 2.0  # positive cache: the staleness bound for revocations made by another process
_REMEMBERED = 1024
# Bumped by invalidate(): an entry remembered under an older generation is never used.
_generation = 0
_generation_lock = threading.Lock()


def invalidate() -> None:
    """Forget every verified credential in this process (a token was revoked, a grant changed)."""
    global _generation
    with _generation_lock:
        _generation += 1
ConnectionFactory = Callable[[], ContextManager[psycopg.Connection]]


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        from lineage.auth.oidc import OidcVerifier

        self.oidc = OidcVerifier(settings) if settings.oidc_enabled else None
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self.proxy_header = settings.proxy_user_header
        # sha256(credentials) -> (principal, verified at (monotonic), credential expiry, generation)
        self._verified: OrderedDict[bytes, tuple[Principal, float, datetime | None, int]] = OrderedDict()
        self._lock = threading.Lock()

    def trusts_peer(self, host: str | None) -> bool:
        if not host or not self.proxies:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:  # ::ffff:10.0.0.5 is 10.0.0.5
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.proxies)

    def authenticate(self, connection: ConnectionFactory, authorization: str | None, proxy_user: str | None,
                     peer: str | None) -> Principal:
        key = hashlib.sha256(f"{authorization}\n{proxy_user}\n{peer}".encode("utf-8", "surrogateescape")).digest()
        generation = _generation  # read before the store is asked: an invalidation during the check wins
        fresh = self._remembered(key, FRESH_SECONDS, generation)
        if fresh is not None:
            return fresh
        try:
            principal, expires = self._authenticate(connection, authorization, proxy_user, peer)
        except StoreUnavailable:
            stale = self._remembered(key, STALE_SECONDS, generation)
            if stale is not None:
                return stale
            raise
        except Unauthenticated:
            # The store has refused this credential (revoked, expired, unknown): forget that it
            # was ever good, or an outage right after would bring it back for STALE_SECONDS.
            with self._lock:
                self._verified.pop(key, None)
            raise
        with self._lock:
            self._verified[key] = (principal, time.monotonic(), expires, generation)
            self._verified.move_to_end(key)
            while len(self._verified) > _REMEMBERED:
                self._verified.popitem(last=False)
        return principal

    def cached(self, authorization: str | None, proxy_user: str | None, peer: str | None) -> Principal | None:
        """The principal these credentials were verified as in the last FRESH_SECONDS, without
        asking the store; None if not (the caller then authenticates the usual way)."""
        key = hashlib.sha256(f"{authorization}\n{proxy_user}\n{peer}".encode("utf-8", "surrogateescape")).digest()
        return self._remembered(key, FRESH_SECONDS, _generation)

    def _remembered(self, key: bytes, within: float, generation: int) -> Principal | None:
        """The principal verified for ``key`` less than ``within`` seconds ago, if still usable."""
        if within <= 0:
            return None
        with self._lock:
            entry = self._verified.get(key)
        if entry is None:
            return None
        principal, verified_at, expires, gen = entry
        if gen != generation or time.monotonic() - verified_at >= within or (expires is not None and expires <= _now()):
            return None
        return principal

    def _authenticate(self, connection: ConnectionFactory, authorization: str | None, proxy_user: str | None,
                      peer: str | None) -> tuple[Principal, datetime | None]:
        if authorization is not None:
            scheme, _, credential = authorization.strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise Unauthenticated("the Authorization header must be `Bearer <token>`")
            if tokens.looks_like_token(credential):
                with connection() as conn:
                    return tokens.verify(conn, credential)
            if self.oidc is None:
                raise Unauthenticated("the bearer token is not an API token (`lin_...`), and OIDC is not configured")
            identity = self.oidc.verify(credential)
            return self._person(connection, identity.name, identity.credential), identity.expires
        if proxy_user is not None and self.trusts_peer(peer):
            try:
                name = normalise_name(proxy_user, self.proxy_header)
            except BadRequest as exc:
                raise Unauthenticated(f"the proxy's {self.proxy_header} header is not a usable name ({exc.reason})") from None
            return self._person(connection, name, f"proxy:{name}"), None
        raise Unauthenticated("no credential was sent")

    @staticmethod
    def _person(connection: ConnectionFactory, name: str, credential: str) -> Principal:
        with connection() as conn:
            return Principal(name=name, credential=credential, roles=grants.roles_for(conn, name))


def _now() -> datetime:
    return datetime.now(timezone.utc)
