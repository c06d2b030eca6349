"""Identity and roles: principals, API tokens, OIDC and proxy identities (see ``principal``).

Submodules: :mod:`~lineage.auth.principal` (names and roles), :mod:`~lineage.auth.tokens`
(API tokens), :mod:`~lineage.auth.grants` (roles for people), :mod:`~lineage.auth.oidc`
(JWT verification), :mod:`~lineage.auth.authenticate` (credentials → principal),
:mod:`~lineage.auth.local` (the local admin token file and what clients send).
"""

from lineage.auth.principal import ROLES, Principal, normalise_name

__all__ = ["ROLES", "Principal", "normalise_name"]
