"""Identity and roles: principals, API tokens, OIDC and proxy identities (see ``principal``)."""

from lineage.auth.principal import ROLES, Principal, normalise_name

__all__ = ["ROLES", "Principal", "normalise_name"]
