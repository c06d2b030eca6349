"""Contract documents: the examples parse; bad input names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage.contracts import taxonomy
from lineage.contracts.document import load_contract, load_contracts
from lineage.errors import ContractError

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ACME = (CONTRACTS / "acme-stock-photos.yaml").read_text()


def _error(text: str, name: str = "bad.yaml") -> ContractError:
    with pytest.raises(ContractError) as info:
        load_contract(name, text=text)
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_example_contracts_parse_with_their_terms():
    docs = {d.id: d for d in load_contracts(CONTRACTS)}
    assert set(docs) == {"acme-stock-photos", "lovematch-photos"}
    acme = docs["acme-stock-photos"].terms
    assert [d.key for d in acme.datasets] == ["partner-drops:acme/photos"]
    assert acme.permitted[0].purpose == "train_ai_system"
    assert acme.provenance_column == "source_contract_id"
    love = docs["lovematch-photos"].terms
    assert [p.purpose for p in love.permitted] == ["essential.service"]
    assert "user.demographic.race_ethnicity" in love.data_categories and "user.location.precise" in love.data_categories
    assert "train_ai_system" in love.prohibited


def test_malformed_yaml_names_file_and_line():
    text = ACME.replace("  - name: photos\n", "  - name: [photos\n", 1)
    err = _error(text, "contracts/acme.yaml")
    assert err.file == "contracts/acme.yaml"
    assert err.line is not None and err.line >= _line_of(text, "name: [photos")
    assert "malformed YAML" in str(err) and "nothing was registered" in str(err)


def test_unknown_taxonomy_key_is_named_with_its_line():
    text = ACME.replace("value: [user.content.self_image]", "value: [user.content.selfie]", 1)
    err = _error(text)
    assert "user.content.selfie" in err.reason and "user.content.self_image" in err.reason  # the suggestion
    assert err.line == _line_of(text, "user.content.selfie")
    assert err.field.startswith("customProperties[")


def test_unknown_purpose_key_in_a_permission():
    text = ACME.replace("- purpose: train_ai_system", "- purpose: train_face_recognition", 1)
    err = _error(text)
    assert "train_face_recognition" in err.reason and err.line == _line_of(text, "train_face_recognition")


def test_missing_required_term_is_named():
    text = ACME.replace("  - property: legalBasis\n    value: contract\n", "")
    err = _error(text)
    assert "legalBasis" in err.reason


def test_unknown_top_level_key_is_refused_by_the_odcs_schema():
    text = ACME + "consent: yes\n"
    err = _error(text)
    assert err.field == "consent" and err.line == _line_of(text, "consent: yes")


def test_dataset_must_name_a_schema_object():
    text = ACME.replace("schema: photos", "schema: pictures")
    err = _error(text)
    assert "pictures" in err.reason and err.line == _line_of(text, "schema: pictures")


def test_non_mapping_and_missing_file():
    assert "mapping" in _error("- just\n- a list\n").reason
    with pytest.raises(ContractError) as info:
        load_contract("/nonexistent/contract.yaml")
    assert info.value.file == "/nonexistent/contract.yaml"


def test_taxonomy_hierarchy_counts():
    assert taxonomy.covers("user.biometric", "user.biometric.voice")
    assert taxonomy.covers("essential", "essential.service")
    assert not taxonomy.covers("user.biometric.voice", "user.biometric")
    assert not taxonomy.covers("user.bio", "user.biometric")  # a prefix of the text is not an ancestor
    with pytest.raises(taxonomy.UnknownKey, match="user.biometrics"):
        taxonomy.check_key("data_category", "user.biometrics")


# -- strict YAML: what a hostile or careless document cannot do -----------------------------------
LOVE = (CONTRACTS / "lovematch-photos.yaml").read_text()
PROHIBITED = "    value: [train_ai_system, third_party_sharing]\n"


def _billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: each level repeats the previous one nine times."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_second_value_line_cannot_erase_a_prohibition():
    # YAML would keep only the last `value:`, silently dropping train_ai_system.
    text = LOVE.replace(PROHIBITED, PROHIBITED + "    value: [third_party_sharing]\n", 1)
    err = _error(text, "contracts/lovematch.yaml")
    second = _line_of(text, "value: [third_party_sharing]")
    assert err.file == "contracts/lovematch.yaml" and err.line == second
    assert err.field == "customProperties[7].value"
    assert "duplicate key `value`" in err.reason and f"line {second - 1}" in err.reason
    assert f"contracts/lovematch.yaml:{second}:" in str(err)


def test_duplicate_keys_are_refused_at_any_depth():
    top = _error(ACME + "id: someone-else\n")
    assert top.field == "id" and top.line == len(ACME.splitlines()) + 1
    nested = ACME.replace("  - name: photos\n", "  - name: photos\n    name: pictures\n", 1)
    err = _error(nested)
    assert err.field == "schema[0].name" and err.line == _line_of(nested, "name: pictures")
    # `1` and "1" are one key once the document is stored as JSON.
    assert "duplicate key `1`" in _error("1: a\n'1': b\n").reason


def test_alias_bomb_is_refused_at_its_first_anchor():
    bomb = _billion_laughs()
    err = _error(bomb)
    assert err.line == 1 and "anchors are not allowed" in err.reason and "aliases" in err.reason


def test_aliases_are_refused_even_without_an_anchor():
    text = ACME + "tags: *elsewhere\n"
    err = _error(text)
    assert err.line == _line_of(text, "*elsewhere") and "YAML aliases are not allowed in contracts" in err.reason


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!python/object/apply:os.system ['true']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!local thing", "!local"),
    ],
)
def test_tags_other_than_plain_values_are_refused(value, shown):
    text = ACME.replace("domain: partner-data", f"domain: {value}", 1)
    err = _error(text)
    assert f"`{shown}`" in err.reason and "not allowed" in err.reason
    assert err.line == _line_of(text, value)


def test_merge_keys_and_complex_keys_are_refused():
    assert "merge keys" in _error("<<: {a: 1}\nb: 2\n").reason
    assert "plain value" in _error("? [a, b]\n: 1\n").reason


def test_deep_nesting_is_refused_not_a_recursion_error():
    err = _error("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert "levels deep" in err.reason and err.line == 1


def test_scalars_python_cannot_hold_name_their_line():
    text = ACME + "contractCreatedTs: 2026-02-30\n"
    err = _error(text)
    assert err.field == "contractCreatedTs" and err.line == _line_of(text, "2026-02-30") and "quote it" in err.reason
    assert "quote it" in _error("a: " + "9" * 5000 + "\n").reason


def test_size_cap_refuses_before_parsing(tmp_path):
    from lineage.errors import ContractTooLarge

    with pytest.raises(ContractTooLarge) as info:
        load_contract("big.yaml", text=ACME, max_bytes=len(ACME.encode()) - 1)
    assert info.value.status == 413 and "LINEAGE_MAX_CONTRACT_BYTES" in info.value.reason
    # Multi-byte characters count as bytes, not characters.
    with pytest.raises(ContractTooLarge):
        load_contract("wide.yaml", text="a: " + "é" * 700, max_bytes=1024)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"# padding\n" * 300_000)  # 3 MB of comments: valid YAML, but over the cap
    with pytest.raises(ContractTooLarge) as info:
        load_contract(huge)
    assert info.value.file == str(huge) and "more than 1048576 bytes" in info.value.reason
    assert load_contract("exact.yaml", text=ACME, max_bytes=len(ACME.encode())).id == "acme-stock-photos"


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    text = ACME.replace("description:", "# caf\xe9\ndescription:", 1)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(text.encode("latin-1"))
    with pytest.raises(ContractError) as info:
        load_contract(bad)
    assert "not UTF-8" in info.value.reason and info.value.line == _line_of(text, "caf")
