#!/usr/bin/env bash
# Regenerate the datacontract-cli Great Expectations exports that tests/contracts/test_ecosystem.py
# compares our compiled suites against.  datacontract-cli is NOT a project dependency (its pins
# fight Airflow's); it lives in its own virtualenv outside the repository:
#
#     python3 -m venv /tmp/dc-venv && /tmp/dc-venv/bin/pip install datacontract-cli==1.2.8
#     DATACONTRACT=/tmp/dc-venv/bin/datacontract tests/data/datacontract/regenerate.sh
#
# For every contract in contracts/ and tests/data/contracts/, and every schema object in it:
#     datacontract export great-expectations --schema-name SCHEMA --output OUT/ID.SCHEMA.json FILE
# plus `datacontract lint FILE` (its last line is kept in manifest.json), and the sha256 of each
# contract, so the test can tell a fixture made from an older version of a contract.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
OUT="$ROOT/tests/data/datacontract"
DC="${DATACONTRACT:-/tmp/dc-venv/bin/datacontract}"
PY="$(dirname "$DC")/python"
cd "$ROOT"
rm -f "$OUT"/*.json
entries=()
for file in contracts/*.yaml tests/data/contracts/*.yaml; do
  id="$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["id"])' "$file")"
  lint="$("$DC" lint "$file" 2>&1 | grep -E '^(🟢|🟠|🔴)' | head -n 1 | sed -e 's/ Took .*//' -e 's/"/\\"/g' | tr -d '\n')"
  for schema in $("$PY" -c 'import sys, yaml; [print(s["name"]) for s in yaml.safe_load(open(sys.argv[1]))["schema"]]' "$file"); do
    "$DC" export great-expectations --schema-name "$schema" --output "$OUT/$id.$schema.json" "$file" >/dev/null
    sha="$(sha256sum "$file" | cut -d' ' -f1)"
    entries+=("{\"contract\": \"$file\", \"id\": \"$id\", \"schema\": \"$schema\", \"export\": \"$id.$schema.json\", \"contract_sha256\": \"$sha\", \"lint\": \"$lint\"}")
  done
done
version="$("$DC" --version | tail -n 1)"
{
  printf '{\n  "datacontract_cli": "%s",\n  "generated": "%s",\n  "command": "datacontract export great-expectations --schema-name SCHEMA --output ID.SCHEMA.json FILE",\n  "exports": [\n' "$version" "$(date -u +%Y-%m-%d)"
  for i in "${!entries[@]}"; do
    sep=","; [ "$i" -eq $((${#entries[@]} - 1)) ] && sep=""
    printf '    %s%s\n' "${entries[$i]}" "$sep"
  done
  printf '  ]\n}\n'
} > "$OUT/manifest.json"
"$PY" -m json.tool "$OUT/manifest.json" >/dev/null
echo "wrote ${#entries[@]} exports and manifest.json to $OUT (datacontract-cli $version)"
