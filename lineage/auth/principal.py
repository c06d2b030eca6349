"""Who is acting: authenticated principals, their roles, and how their names compare.

A :class:`Principal` is what the server authenticated — an API token, an OIDC subject, or
an identity an authenticating proxy vouched for — never a name a request asserts.  Every
write records ``principal.name`` (the normalised name) and ``principal.credential`` (which
credential proved it), and separation of duties compares normalised names only.

Roles follow the governance workflow:

``emitter``    send lineage (a token may be scoped to job namespaces)
``viewer``     read lineage, contracts and gate decisions
``requester``  register contract versions
``steward``    approve, revoke and expire contracts (and later erase)
``auditor``    read everything, the decision log included (later: verify and export the record)
``admin``      API tokens, role grants, declared ties and namespace owners

No role implies another: an admin who should also approve contracts is granted ``steward``
explicitly, and then separation of duties still applies to them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from lineage.errors import BadRequest

ROLES: tuple[str, ...] = ("emitter", "viewer", "requester", "steward", "auditor", "admin")


def normalise_name(raw: str, field_name: str = "name") -> str:
    """The form every principal, owner and requester name is compared in.

    Unicode NFKC (full-width and compatibility forms fold to plain ones), then case-folded,
    surrounding blanks stripped.  Zero-width, format and control characters are *refused*
    rather than dropped (:class:`~lineage.errors.BadRequest` naming ``field_name``): a name
    that needs them to differ from another is an attempt to pass as someone else.  So is a
    name mixing Latin with Cyrillic, Greek, Armenian or Cherokee letters (``dpо@`` with a
    Cyrillic ``о``), which is refused too.
    """
    if not isinstance(raw, str):
        raise BadRequest(field_name, "must be a string")
    text = unicodedata.normalize("NFKC", raw).strip()
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise BadRequest(field_name, f"contains the invisible or control character U+{ord(ch):04X}; names must be plain text")
    if not text:
        raise BadRequest(field_name, "must not be empty")
    scripts = {_script(ch) for ch in text if ch.isalpha()} - {None}
    if len(scripts) > 1:
        raise BadRequest(field_name, f"mixes {' and '.join(sorted(scripts))} letters, as look-alike names do; use one script")
    return text.casefold()


_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def _script(ch: str) -> str | None:
    """The script of a letter, among those whose letters are commonly confused with Latin."""
    name = unicodedata.name(ch, "")
    return next((s for s in _CONFUSABLE_SCRIPTS if name.startswith(s)), None)


@dataclass(frozen=True)
class Principal:
    """An authenticated actor.

    ``name`` is normalised (:func:`normalise_name`); ``credential`` names what proved it
    (``token:airflow-prod``, ``oidc:https://idp.example.com#subject``, ``proxy:alice``);
    ``namespaces`` limits an emitter to those job namespaces (None: any).
    """

    name: str
    credential: str
    roles: frozenset[str] = field(default_factory=frozenset)
    namespaces: frozenset[str] | None = None

    def has(self, *roles: str) -> bool:
        """Holds at least one of ``roles``."""
        return any(r in self.roles for r in roles)

    def may_emit_for(self, job_namespace: str) -> bool:
        return self.namespaces is None or job_namespace in self.namespaces
