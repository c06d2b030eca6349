"""The local admin token, and which token a client on this machine sends.

Secure by default, easy locally: on the embedded default, the first ``lineage serve`` creates
an admin token and writes it to ``LINEAGE_HOME/admin-token`` (mode 0600, created with that
mode so no other user can read it even for an instant; never printed or logged).  The CLI on
the same machine then sends it when no other token is given, so one user on one machine
never handles a secret, while the server still refuses every request without a credential.

The local admin token acts as ``local-admin`` with ``admin``, ``emitter``, ``viewer`` and
``auditor``: enough to run, feed and inspect a local store, and to create tokens and grants.
It deliberately lacks ``steward`` and ``requester``: approving a contract is a person's
decision, granted to a named person.

:func:`client_token` picks what a client sends: an explicit ``--token``, else
``LINEAGE_TOKEN``, else the local admin token file when it exists.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg

from lineage.config import Settings

log = logging.getLogger("lineage.auth")

LOCAL_ADMIN = "local-admin"
LOCAL_ADMIN_ROLES = ("admin", "emitter", "viewer", "auditor")


def read_token_file(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    return text or None


def client_token(settings: Settings, explicit: str | None = None) -> str | None:
    """The token a client on this machine sends, or None (the request goes unauthenticated)."""
    if explicit:
        return explicit
    if settings.token is not None:
        return settings.token.get_secret_value()
    return read_token_file(settings.admin_token_file)


def auth_headers(settings: Settings, explicit: str | None = None) -> dict[str, str]:
    token = client_token(settings, explicit)
    return {"Authorization": f"Bearer {token}"} if token else {}


def write_secret_file(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secret + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_local_admin(conn: psycopg.Connection, settings: Settings) -> bool:
    """Make sure ``LINEAGE_HOME/admin-token`` holds a working admin token; True if one was made.

    A token file that no longer authenticates (revoked, or the store was reset) is replaced.
    """
    return ensure_token_file(conn, settings.admin_token_file, name=LOCAL_ADMIN, principal=LOCAL_ADMIN,
                             roles=LOCAL_ADMIN_ROLES, created_by="lineage serve (first start)")


def ensure_token_file(conn: psycopg.Connection, path: Path, *, name: str, principal: str, roles: tuple[str, ...] | list[str],
                      created_by: str, namespaces: list[str] | None = None) -> bool:
    """Make sure ``path`` holds a token that authenticates with ``roles``; True if one was made.

    The token is created under ``name`` (or ``name-2``, ``name-3``... since names are never
    reused) and written with mode 0600; it is never printed or logged.
    """
    from lineage.auth import tokens
    from lineage.auth.errors import Unauthenticated
    from lineage.store import auth as store

    existing = read_token_file(path)
    if existing is not None:
        try:
            if set(roles) <= tokens.authenticate(conn, existing).roles:
                return False
        except Unauthenticated:
            pass
    base, n = name, 1
    while store.token_by_name(conn, name) is not None:
        n += 1
        name = f"{base}-{n}"
    _, secret = tokens.create(conn, name=name, principal=principal, roles=roles, namespaces=namespaces, created_by=created_by)
    conn.commit()  # the token exists before its file does
    write_secret_file(path, secret)
    log.info("created the token `%s` in %s (mode 0600)", name, path)
    return True


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere: treated as exposed


def prepare_serve(settings: Settings) -> None:
    """What ``lineage serve`` checks and sets up before it listens.

    * On a non-loopback address, authentication must already be configured: OIDC
      (``LINEAGE_OIDC_ISSUER``), ``LINEAGE_TRUSTED_PROXIES``, or at least one live admin token;
      otherwise :class:`~lineage.errors.ConfigError` naming those settings.
    * On the embedded default, the local admin token file is created (or renewed).
    * A broken OIDC setting (no audience, an unreadable key file) stops start-up here.
    """
    from lineage.auth.authenticate import Authenticator
    from lineage.errors import ConfigError
    from lineage.store import auth as store
    from lineage.store.db import open_database

    Authenticator(settings)  # validates the OIDC settings and key file
    with open_database(settings, migrate=True) as db, db.connection() as conn:
        if not is_loopback(settings.host) and not (settings.oidc_enabled or settings.trusted_proxies or store.live_admin_tokens(conn)):
            raise ConfigError(
                f"refusing to listen on {settings.host} (not a loopback address) without authentication configured: "
                "set LINEAGE_OIDC_ISSUER (with LINEAGE_OIDC_AUDIENCE and LINEAGE_OIDC_JWKS_URL), or LINEAGE_TRUSTED_PROXIES, "
                "or create an admin token first with `lineage tokens create NAME --principal YOU --role admin --bootstrap`; "
                "or keep LINEAGE_HOST=127.0.0.1"
            )
        if settings.embedded:
            ensure_local_admin(conn, settings)
