"""Principal names: one normal form, and the look-alikes that must not pass as someone else."""

from __future__ import annotations

import pytest

from lineage.auth import Principal, normalise_name
from lineage.errors import BadRequest


@pytest.mark.parametrize("raw", ["ML-Lead@Example.com", " ml-lead@example.com ", "ｍｌ－ｌｅａｄ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ML-LEAD@EXAMPLE.COM"])
def test_spellings_of_one_person_normalise_to_one_name(raw):
    assert normalise_name(raw) == "ml-lead@example.com"


@pytest.mark.parametrize(
    "raw, why",
    [
        ("ml-lead@example.com\u200b", "U+200B"),  # zero-width space: the self-approval bypass
        ("ml-\u200dlead@example.com", "U+200D"),  # zero-width joiner
        ("ml-lead@example.com\u202e", "U+202E"),  # right-to-left override
        ("ml-lead@example.com\x00", "U+0000"),
        ("ml-lead\n@example.com", "U+000A"),
        ("dp\u043e@example.com", "CYRILLIC and LATIN"),  # Cyrillic о in a Latin name
        ("\u0391lice@example.com", "GREEK and LATIN"),  # Greek capital alpha
        ("   ", "empty"),
    ],
)
def test_invisible_characters_and_mixed_scripts_are_refused_naming_the_field(raw, why):
    with pytest.raises(BadRequest) as err:
        normalise_name(raw, "approver")
    assert err.value.field == "approver" and why in err.value.reason


def test_names_in_one_non_latin_script_are_accepted():
    assert normalise_name("Иван@пример.рф") == "иван@пример.рф"


def test_roles_are_explicit_and_a_scope_limits_namespaces():
    p = Principal("airflow", "token:airflow", frozenset({"emitter"}), frozenset({"ml-pipeline"}))
    assert p.has("emitter") and not p.has("admin", "steward")
    assert p.may_emit_for("ml-pipeline") and not p.may_emit_for("other")
    assert Principal("admin", "token:admin", frozenset({"admin"})).may_emit_for("anything")
