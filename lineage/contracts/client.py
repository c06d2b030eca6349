"""The CLI's writes go through the server: one authenticated HTTP call, errors as LineageErrors.

Governance writes (register, approve, revoke, expire; ties and namespace owners) are made by
the principal the *server* authenticates, so the CLI never touches the registry tables for
them: it sends ``Authorization: Bearer TOKEN`` to ``LINEAGE_URL`` (``settings.server_url``)
and prints what the server recorded.  The token comes from ``--token`` or ``LINEAGE_TOKEN``
(prefer the variable: a command-line argument is visible to other users in ``ps``); it is
never printed.

A refusal keeps the server's status and message (:class:`ApiRefused`, exit code 2 like every
other error), as one line (:func:`refusal`): a 401 says what to send, a 403 names the roles
that would do; a server that cannot be reached is :class:`ServerUnreachable`.
"""

from __future__ import annotations

from typing import Any

from lineage.errors import LineageError

TIMEOUT = 60.0


class ApiRefused(LineageError):
    """The server answered with an error; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class ServerUnreachable(LineageError):
    status = 503


def refusal(status: int, message: str, *, sent: bool) -> str:
    """One line for a refused request: a 401 says what to send, a 403 keeps the server's words
    (they name the principal and every role that would do)."""
    if status == 401:
        reason = message.removeprefix("authentication required: ").split("; send `Authorization", 1)[0]
        fix = "the token was not accepted; pass a valid one" if sent else "no token was sent; pass one"
        return f"not authenticated ({reason}): {fix} with --token or LINEAGE_TOKEN"
    if status == 403:
        return f"refused (403): {message}"
    return message


def call(
    method: str,
    path: str,
    token: str | None,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    settings: Any = None,
) -> dict[str, Any]:
    """``method`` ``path`` on the configured server as the principal ``token`` proves; the JSON answer."""
    import httpx

    from lineage.config import Settings, api_url

    settings = settings or Settings()
    url = api_url(settings.server_url, path)
    sent = dict(headers or {})
    if token:
        sent["authorization"] = f"Bearer {token.strip()}"
    try:
        r = httpx.request(method, url, json=json, content=content, headers=sent, params=params, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ServerUnreachable(
            f"cannot reach the lineage server at {settings.server_url} ({type(exc).__name__}): start it with `lineage serve`, "
            "or set LINEAGE_URL to the running server"
        ) from None
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), str) else f"HTTP {r.status_code}"
        raise ApiRefused(r.status_code, refusal(r.status_code, message, sent=bool(token)))
    if not isinstance(body, dict):
        raise ApiRefused(502, f"the server at {settings.server_url} did not answer with JSON (HTTP {r.status_code})")
    return body
