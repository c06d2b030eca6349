"""Every ``lineage`` command that goes through the server × every role and bad credential.

Each command is run as a user runs it (``lineage.cli.main`` with its argv, the token in
``LINEAGE_TOKEN``, the server at ``LINEAGE_URL``) with no token, with a token of each role
alone, and with a revoked token.  Where refused: a non-zero exit and one ``error:`` line on
stderr, no traceback, naming what is missing (a token for 401, every role that would do for
403).  Where allowed: exit 0.

The decisions are written out here, independently of the server's route table, and the first
test enumerates the typer app: a command added without a row (``SERVER``) or a stated reason
it does not use the server (``DIRECT``) fails, so no command ships without a decision.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
import typer

from lineage import cli
from lineage.auth import ROLES
from lineage.samples import dataset, run_event

ROOT = Path(__file__).resolve().parents[1]
ACME = str(ROOT / "contracts" / "acme-stock-photos.yaml")
ANY = set(ROLES)

# Commands that read or write the store directly with the database credentials (or run the
# server itself): no API token is involved.  Why each is here:
DIRECT = {
    "serve": "runs the server",
    "db upgrade": "migrates with the database credentials",
    "upstream": "reads the store directly",
    "downstream": "reads the store directly",
    "contracts list": "reads the store directly",
    "contracts show": "reads the store directly",
    "contracts compile": "reads contract files, writes suites; no store",
    "gate check": "asks the gate in-process against the store (fails closed)",
    "gate log": "reads the decision log directly",
    "spool status": "counts lines in the local spool directory; no server",
    "impact": "reads the store directly",
    "audit seal": "seals the ledger with the database credentials (the server does it too)",
    "audit checkpoint": "signs with the key file outside the database: whoever holds it (admin, the server's host)",
    "audit verify": "re-hashes the store directly (the reader database role suffices)",
    "audit export": "reads the store directly (the reader database role suffices)",
    "audit verify-bundle": "reads a directory only: no database, no server",
    "derive": "derives the graph with the database credentials (a worker process)",
    "maintain partitions": "creates partitions as the owner database role (like `db upgrade`)",
    "maintain retain": "archives and drops partitions as the owner database role",
}

# command -> (argv after `lineage`, roles allowed).  `{x}` fields are filled by _prepare.
SERVER: dict[str, tuple[list[str], set[str]]] = {
    "ingest": (["ingest", "{events}"], {"emitter"}),
    "spool replay": (["spool", "replay", "--dir", "{spool}"], {"emitter"}),
    "whoami": (["whoami"], ANY),
    "contracts register": (["contracts", "register", ACME], {"requester"}),
    "contracts approve": (["contracts", "approve", "acme-stock-photos", "--reason", "checked"], {"steward"}),
    "contracts revoke": (["contracts", "revoke", "acme-stock-photos", "--reason", "withdrawn"], {"steward"}),
    "contracts expire": (["contracts", "expire"], {"steward"}),
    "governance ties add": (["governance", "ties", "add", "someone@example.com", "Acme", "--kind", "investment"], {"admin"}),
    "governance ties list": (["governance", "ties", "list"], {"admin", "auditor"}),
    "governance ties revoke": (["governance", "ties", "revoke", "{tie}", "--reason", "sold"], {"admin"}),
    "governance owners add": (["governance", "owners", "add", "ml-pipeline", "owner@example.com"], {"admin"}),
    "governance owners list": (["governance", "owners", "list"], {"admin", "auditor"}),
    "governance owners revoke": (["governance", "owners", "revoke", "{owner}", "--reason", "moved"], {"admin"}),
    "tokens create": (["tokens", "create", "made-by-cli", "--principal", "svc@example.com", "--role", "viewer"], {"admin"}),
    "tokens list": (["tokens", "list"], {"admin"}),
    "tokens revoke": (["tokens", "revoke", "to-revoke"], {"admin"}),
    "grants add": (["grants", "add", "newcomer@example.com", "viewer"], {"admin"}),
    "grants list": (["grants", "list"], {"admin"}),
    "grants revoke": (["grants", "revoke", "holder@example.com", "viewer"], {"admin"}),
    "erase": (["erase", "dataset:raw:cli-source", "--reason", "consent withdrawn"], {"steward"}),
    "erasure status": (["erasure", "status", "{erasure}"], {"auditor", "steward", "emitter"}),
    "erasure list": (["erasure", "list"], {"auditor", "steward", "emitter"}),
}

IDENTITIES = ["none", *ROLES, "revoked"]


def _commands() -> set[str]:
    cli._mount_subcommands()
    root = typer.main.get_command(cli.app)

    def walk(cmd, path=()):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield " ".join(path)

    return set(walk(root))


_ALL = _commands()


def test_every_command_has_a_decision():
    undecided = _ALL - set(SERVER) - set(DIRECT)
    assert not undecided, f"commands without a row in SERVER or DIRECT: {sorted(undecided)}"
    assert not (set(SERVER) | set(DIRECT)) - _ALL, "rows for commands that no longer exist"
    assert not set(SERVER) & set(DIRECT)


@pytest.fixture
def world(live_server, tokens, tmp_path, monkeypatch):
    """Tokens for each role (principal ROLE@cli.example) and a revoked one; the CLI aimed at the server."""
    ids = {role: tokens(f"cli-{role}", role, principal=f"{role}@cli.example") for role in ROLES}
    ids["revoked"] = tokens("cli-revoked", principal="revoked@cli.example")  # every role, then revoked
    setup = tokens("cli-setup", principal="setup@cli.example")
    ids["setup"] = setup
    r = httpx.post(f"{live_server.url}/api/v1/auth/tokens/cli-revoked/revoke", headers={"Authorization": f"Bearer {setup}"})
    assert r.status_code == 200, r.text
    home = tmp_path / "cli-home"  # no admin-token file: `none` really sends nothing
    monkeypatch.setenv("LINEAGE_URL", live_server.url)
    monkeypatch.setenv("LINEAGE_HOME", str(home))
    monkeypatch.delenv("LINEAGE_TOKEN", raising=False)
    return live_server, ids, tmp_path


def _api(server, token: str, method: str, path: str, headers: dict | None = None, **kw) -> dict:
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    r = httpx.request(method, server.url + path, headers=sent, timeout=30, **kw)
    assert r.status_code < 300, (path, r.status_code, r.text)
    return r.json()


def _prepare(command: str, server, setup: str, tmp_path: Path) -> dict[str, str]:
    """What COMMAND needs to succeed for an allowed role; values for its `{x}` fields."""
    fields: dict[str, str] = {}
    if command in ("contracts approve", "contracts revoke"):  # registered by someone else, not yet decided
        requester = _api(server, setup, "POST", "/api/v1/auth/tokens",
                         json={"name": "setup-requester", "principal": "requests@cli.example", "roles": ["requester"]})["token"]
        _api(server, requester, "POST", "/api/v1/contracts", content=Path(ACME).read_bytes(),
             headers={"content-type": "application/yaml"})
    elif command == "governance ties revoke":
        fields["tie"] = str(_api(server, setup, "POST", "/api/v1/governance/ties",
                                 json={"principal": "p@example.com", "organisation": "Acme", "kind": "family"})["id"])
    elif command == "governance owners revoke":
        fields["owner"] = str(_api(server, setup, "POST", "/api/v1/governance/owners",
                                   json={"namespace": "ns", "owner": "o@example.com"})["id"])
    elif command == "tokens revoke":
        _api(server, setup, "POST", "/api/v1/auth/tokens", json={"name": "to-revoke", "principal": "x@example.com", "roles": ["viewer"]})
    elif command == "grants revoke":
        _api(server, setup, "POST", "/api/v1/auth/grants", json={"principal": "holder@example.com", "role": "viewer"})
    elif command in ("erase", "erasure status"):  # a source the store knows (and, for status, its erasure)
        ev = run_event("COMPLETE", ("ml-pipeline", "cli.erase"), "0193a1f0-0000-7000-8000-000000000002",
                       inputs=[dataset("raw", "cli-source")], outputs=[dataset("curated", "cli-derived")])
        r = httpx.post(f"{server.url}/api/v1/lineage", json=ev, headers={"Authorization": f"Bearer {setup}"})
        assert r.status_code == 201, r.text
        if command == "erasure status":
            fields["erasure"] = str(_api(server, setup, "POST", "/api/v1/erasures",
                                         json={"source": "dataset:raw:cli-source", "reason": "set-up"})["id"])
    elif command == "ingest":
        events = tmp_path / "events.ndjson"
        ev = run_event("COMPLETE", ("ml-pipeline", "cli.job"), "0193a1f0-0000-7000-8000-000000000001",
                       inputs=[dataset("raw", "in")], outputs=[dataset("curated", "out")])
        events.write_text(json.dumps(ev) + "\n")
        fields["events"] = str(events)
    elif command == "spool replay":  # a spool left by a worker that died before delivering
        spool = tmp_path / "spool"
        spool.mkdir()
        ev = run_event("START", ("ml-pipeline", "cli.spooled"), "0193a1f0-0000-7000-8000-000000000002")
        (spool / "pending-20260101T000000000000-host-1-abcdef.ndjson").write_text(json.dumps(ev) + "\n")
        fields["spool"] = str(spool)
    return fields


def _lineage(argv: list[str], token: str | None, monkeypatch, capsys) -> tuple[int, str, str]:
    """``lineage ARGV`` in-process, exactly through ``main()``; (exit code, stdout, stderr)."""
    if token is None:
        monkeypatch.delenv("LINEAGE_TOKEN", raising=False)
    else:
        monkeypatch.setenv("LINEAGE_TOKEN", token)
    monkeypatch.setattr(sys, "argv", ["lineage", *argv])
    monkeypatch.setattr(cli, "_mount_subcommands", lambda: None)  # mounted once, above
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", sorted(SERVER))
def test_command_by_role(command, world, monkeypatch, capsys):
    server, ids, tmp_path = world
    argv_template, allowed = SERVER[command]
    fields = _prepare(command, server, ids["setup"], tmp_path)
    argv = [a.format(**fields) if "{" in a else a for a in argv_template]
    # Refused identities first, so nothing they might do changes what the allowed one finds.
    order = [i for i in IDENTITIES if i not in allowed] + [i for i in IDENTITIES if i in allowed]
    for identity in order:
        token = None if identity == "none" else ids[identity]
        code, out, err = _lineage(argv, token, monkeypatch, capsys)
        where = f"`lineage {' '.join(argv)}` as {identity}"
        assert "Traceback" not in out + err, f"{where}: {err}"
        if identity in allowed:
            assert code == 0, f"{where} should succeed: exit {code}: {err}"
            continue
        assert code != 0, f"{where} should be refused, exit 0: {out}"
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1, f"{where}: one error line expected, got {lines}"
        message = errors[0]
        if identity in ("none", "revoked"):
            assert any(w in message for w in ("token", "authentication required", "401")), f"{where}: {message}"
            if identity == "revoked":
                assert "revoked" in message, f"{where}: a revoked token should be named as such: {message}"
        else:
            assert "403" in message or "needs the role" in message or "outside" in message, f"{where}: {message}"
            missing = [r for r in allowed if f"`{r}`" not in message]
            assert not missing, f"{where}: the refusal should name the role(s) {sorted(allowed)}: {message}"

