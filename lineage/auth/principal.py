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


def normalise_name(raw: str, field_name: str = "name", *, punctuation: bool = False) -> str:
    """The form every principal, owner and requester name is compared in.

    Unicode NFKC (full-width and compatibility forms fold to plain ones), then case-folded,
    surrounding blanks stripped.  Characters that render as nothing are *refused* rather than
    dropped (:class:`~lineage.errors.BadRequest` naming ``field_name``): control and format
    characters, and every other default-ignorable code point, which includes letters and
    marks (Hangul fillers, the combining grapheme joiner, variation selectors) that a check on
    categories alone lets through.  A name that needs them to differ from another is an
    attempt to pass as someone else.  So is a name mixing Latin with Cyrillic, Greek, Armenian
    or Cherokee letters (``dpо@`` with a Cyrillic ``о``), and one with punctuation, symbols or
    spaces outside ASCII that NFKC leaves alone (``ml‐lead@`` with U+2010 HYPHEN): both are
    refused.  Letters and digits of any one script stay welcome.  ``punctuation=True`` lets
    non-ASCII punctuation and symbols through (organisation names: ``L’Oréal``), for callers
    that treat them as separators.
    """
    if not isinstance(raw, str):
        raise BadRequest(field_name, "must be a string")
    text = unicodedata.normalize("NFKC", raw).strip()
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or _ignorable(ch):
            raise BadRequest(field_name, f"contains the invisible or control character U+{ord(ch):04X}; names must be plain text")
        if not punctuation and ord(ch) > 0x7F and unicodedata.category(ch)[0] in "PSZ":
            raise BadRequest(field_name, f"contains U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')}), punctuation that can pass "
                                         "for ASCII; names use ASCII punctuation")
    if not text:
        raise BadRequest(field_name, "must not be empty")
    scripts = {_script(ch) for ch in text if ch.isalpha()} - {None}
    if len(scripts) > 1:
        raise BadRequest(field_name, f"mixes {' and '.join(sorted(scripts))} letters, as look-alike names do; use one script")
    return text.casefold()


# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) beyond the Cc/Cf/Cn categories
# refused above: invisible letters and marks.  Python's unicodedata does not expose the property.
_IGNORABLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
              (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0000, 0xE0FFF))


def _ignorable(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _IGNORABLE)


def person_key(name: str) -> str:
    """What two spellings of one person share, for separation of duties (``name`` normalised).

    Folds what reaches the same mailbox or reads as the same name: a ``+tag`` in an address's
    local part (``ml-lead+x@example.com``), a trailing dot on its domain (``example.com.``) and
    diacritics (``léad``).  Used only to *refuse* (two names with one key may not approve for
    each other), never to authenticate or to look up roles, so folding too much costs at
    worst an approval by another steward.
    """
    text = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    local, at, domain = text.rpartition("@")
    if not at:
        return text.rstrip(".")
    base = local.split("+", 1)[0] or local
    return f"{base}@{domain.rstrip('.')}"


def same_person(a: str, b: str) -> bool:
    """Whether normalised names ``a`` and ``b`` may be one person (see :func:`person_key`)."""
    return person_key(a) == person_key(b)


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
