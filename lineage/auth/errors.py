"""The two refusals of authentication and authorisation, as :class:`~lineage.errors.LineageError`\\ s.

* :class:`Unauthenticated` (401): no credential, or one that proves nothing (malformed, wrong
  secret, expired, revoked, a JWT that fails verification).  The API answers with
  ``WWW-Authenticate: Bearer``.  The message says what to send, never which part of a
  presented credential was wrong beyond a short public reason.
* :class:`MissingRole` (403): authenticated, but without any of the roles the action needs;
  the message names them.  :class:`OutOfScope` (403): an emitter token scoped to job
  namespaces sent an event for another one; names the field (``$.job.namespace``).
"""

from __future__ import annotations

from lineage.errors import Forbidden, LineageError


class Unauthenticated(LineageError):
    status = 401

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"authentication required: {reason}; send `Authorization: Bearer <token>` "
            "(an API token `lin_...` or an OIDC access token)"
        )


class MissingRole(Forbidden):
    def __init__(self, principal: str, needed: tuple[str, ...], action: str) -> None:
        self.principal = principal
        self.needed = needed
        roles = " or ".join(f"`{r}`" for r in needed)
        super().__init__(f"`{principal}` may not {action}: it needs the role {roles}; ask an admin to grant it")


class OutOfScope(Forbidden):
    field = "$.job.namespace"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{self.field}: {reason}")
