"""TEMPORARY security stub (helper "gov"): drop this file at merge in favour of the auth helper's module.

It only fixes the interface the contract and governance routers use:
``require(*roles)`` returns a FastAPI dependency that yields the authenticated
:class:`~lineage.auth.principal.Principal` holding at least one of ``roles``.  This stub
authenticates nobody: every request it guards is refused with 401 (fail closed).  Tests replace
the dependencies through ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Callable

from fastapi import HTTPException

from lineage.auth.principal import ROLES, Principal


def require(*roles: str) -> Callable[..., Principal]:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def dependency() -> Principal:
        raise HTTPException(status_code=401, detail="authentication is not configured (temporary stub)")

    dependency.__name__ = "require_" + "_or_".join(roles)
    return dependency
