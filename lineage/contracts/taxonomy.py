"""Fides taxonomy keys: validation and the hierarchy rule.

Contracts name data uses (``train_ai_system``, ``essential.service``), data categories
(``user.content.self_image``) and data subjects (``customer``) by their keys in fideslang's
default taxonomy.  This module answers two questions, purely:

* is a key known?  (:func:`check_key` raises :class:`UnknownKey` naming it, with a hint);
* does a rule on one key cover another?  (:func:`covers`): the hierarchy counts, so a rule on
  ``user.biometric`` covers ``user.biometric.voice``, and a rule on ``essential`` covers
  ``essential.service``.  Keys are dotted paths, so coverage is "equal, or an ancestor".

The taxonomy is loaded once, lazily, from ``fideslang.default_taxonomy``.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Iterable, Literal

Kind = Literal["data_use", "data_category", "data_subject"]

#: Lawful bases of GDPR art. 6(1); a contract's ``legalBasis`` must be one of them.
LEGAL_BASES = frozenset(
    {"consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"}
)


class UnknownKey(ValueError):
    """A key that is not in the taxonomy; ``str()`` names it and suggests the nearest keys."""

    def __init__(self, kind: Kind, key: str, suggestions: list[str]) -> None:
        self.kind = kind
        self.key = key
        hint = f" (did you mean {', '.join(f'`{s}`' for s in suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown Fides {kind.replace('_', ' ')} `{key}`{hint}")


@lru_cache(maxsize=1)
def _keys() -> dict[str, frozenset[str]]:
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY as taxonomy

    return {
        "data_use": frozenset(x.fides_key for x in taxonomy.data_use),
        "data_category": frozenset(x.fides_key for x in taxonomy.data_category),
        "data_subject": frozenset(x.fides_key for x in taxonomy.data_subject),
    }


def keys(kind: Kind) -> frozenset[str]:
    """Every key of one kind in the default taxonomy."""
    return _keys()[kind]


def check_key(kind: Kind, key: object) -> str:
    """Return ``key`` if the taxonomy knows it; raise :class:`UnknownKey` otherwise."""
    known = keys(kind)
    if not isinstance(key, str) or key not in known:
        text = str(key)
        raise UnknownKey(kind, text, difflib.get_close_matches(text, sorted(known), n=3, cutoff=0.6))
    return key


def covers(rule: str, key: str) -> bool:
    """True when a rule stated on ``rule`` applies to ``key``: equal, or ``rule`` is an ancestor."""
    return key == rule or key.startswith(rule + ".")


def overlaps(a: str, b: str) -> bool:
    """True when one key covers the other (either direction)."""
    return covers(a, b) or covers(b, a)


def covered_by_any(key: str, rules: Iterable[str]) -> str | None:
    """The first rule in ``rules`` that covers ``key``, or None."""
    for rule in rules:
        if covers(rule, key):
            return rule
    return None
