"""``PYTHONPATH=dags python -m example_pipeline.demo`` (``make demo``): the whole story on one machine, in about a minute.

1. Generate two partners' drops (small, deterministic, no downloads) under ``LINEAGE_HOME``.
2. Run ACME's ingest DAG while the lineage server is still down: the task succeeds anyway and
   its events land in the spool.  Start ``lineage serve`` and replay the spool with
   ``lineage spool replay`` as Airflow (an ``emitter`` token scoped to the pipeline's namespace).
3. Source contracts, through the HTTP API as real principals: with the local admin token the
   demo creates API tokens for a requester (``data-requests@example.com``) and two stewards
   (``dpo@example.com``, ``privacy-counsel@example.com``); the requester registers the
   contracts in ``contracts/`` and the stewards approve them.  ACME's permits
   ``train_ai_system``; LoveMatch's — dating-app photos with demographic and precise location
   fields, special categories — needs two different stewards and permits only
   ``essential.service``.  The server records each principal and token; the demo prints who
   registered and who approved what, as the server recorded it.
4. Run the rest of the pipeline for both partners with ``dag.test()`` (Airflow metadata in
   SQLite under ``LINEAGE_HOME/airflow``): ACME's model trains; LoveMatch's training is blocked
   at the contract gate, and the gate's reasons are printed.
5. Print the lineage from each source towards the model, and what to open next.

Running it again is safe: drops and contracts are idempotent (the same document registered
again is a no-op, and only ``proposed`` contracts are approved), the people's tokens are kept
under ``LINEAGE_HOME/tokens`` (mode 0600) and reused while they authenticate, Airflow's
database is migrated once, each run gets new run ids, and delivered events leave the spool.
A server that is already running at ``LINEAGE_URL`` is reused and left running; one the demo
started is stopped.  No token is ever printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from example_pipeline.pipeline import PARTNERS, Partner
from pydantic import SecretStr

from lineage.config import Settings, api_url
from lineage.events.ids import parse_node_id

REPO = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO / "contracts"
# The people of the contract workflow: a requester and two independent stewards (a contract
# holding special categories needs two different ones).  Each gets its own API token.
REQUESTER = "data-requests@example.com"
STEWARDS = ("dpo@example.com", "privacy-counsel@example.com")
PEOPLE = (  # (token name, principal, role)
    ("demo-requester", REQUESTER, "requester"),
    ("demo-steward-dpo", STEWARDS[0], "steward"),
    ("demo-steward-counsel", STEWARDS[1], "steward"),
)


def say(text: str = "") -> None:
    print(text, flush=True)


def step(n: int, title: str) -> None:
    say(f"\n== {n}. {title} " + "=" * max(0, 70 - len(title)))


# -- people ----------------------------------------------------------------------------------


def ensure_person_token(settings: Settings, admin_token: str, token_name: str, principal: str, role: str) -> str:
    """A live token acting as ``principal`` with ``role``, kept in ``LINEAGE_HOME/tokens/NAME``.

    The file's token is reused while the server still accepts it for that principal and role;
    otherwise the admin creates a new one through ``POST /api/v1/auth/tokens`` (as ``NAME``, or
    ``NAME-2``... since token names are never reused) and the file is replaced (mode 0600).
    """
    from lineage.auth.local import read_token_file, write_secret_file
    from lineage.contracts.client import ApiRefused, call

    path = settings.home / "tokens" / token_name
    existing = read_token_file(path)
    if existing is not None:
        try:
            me = call("GET", "/api/v1/auth/whoami", existing, settings=settings)
            if me["name"] == principal and role in me["roles"]:
                return existing
        except ApiRefused as exc:
            if exc.status != 401:  # revoked or unknown (a fresh store): make a new one below
                raise
    name, n = token_name, 1
    while True:
        try:
            made = call("POST", "/api/v1/auth/tokens", admin_token, settings=settings,
                        json={"name": name, "principal": principal, "roles": [role]})
            break
        except ApiRefused as exc:
            if exc.status != 409:
                raise
            n += 1
            name = f"{token_name}-{n}"
    write_secret_file(path, made["token"])
    return made["token"]


def setup_people(settings: Settings, admin_token: str) -> dict[str, str]:
    """Tokens for the requester and the stewards, created with the admin token; principal → token."""
    return {who: ensure_person_token(settings, admin_token, name, who, role) for name, who, role in PEOPLE}


# -- contracts -------------------------------------------------------------------------------


def setup_contracts(settings: Settings, people: dict[str, str], directory: Path = CONTRACTS_DIR) -> list[dict[str, Any]]:
    """Register every contract in ``directory`` as the requester, then have the stewards approve.

    Everything goes through the HTTP API with each principal's own token, so the server — not
    the demo — decides who acts and enforces separation of duties and four eyes.  The first
    steward approves; a contract holding special categories stays proposed after that and the
    second steward approves it too.  Idempotent: the same document again is a no-op and only
    ``proposed`` contracts are approved.  A contract someone revoked stays revoked (a new
    decision is a steward's, not the demo's).  Returns each contract's state with its history.
    """
    from urllib.parse import quote

    from lineage.contracts.client import ApiRefused, call
    from lineage.contracts.document import load_contracts

    states = []
    for doc in load_contracts(directory):
        path = Path(doc.source_file)
        cid = quote(doc.id, safe="")
        try:
            state = call("GET", f"/api/v1/contracts/{cid}", people[REQUESTER], settings=settings)
        except ApiRefused as exc:
            if exc.status != 404:
                raise
            state = None
        if state is None or state["status"] != "revoked":
            label = f"{directory.name}/{path.name}"
            call("POST", "/api/v1/contracts", people[REQUESTER], settings=settings, content=path.read_bytes(),
                 headers={"content-type": "application/yaml", "x-contract-file": quote(label, safe="/:._-")})
            state = call("GET", f"/api/v1/contracts/{cid}", people[REQUESTER], settings=settings)
            for steward in STEWARDS:
                if state["status"] != "proposed" or steward in _approvers(state):
                    continue
                call("POST", f"/api/v1/contracts/{cid}/approve", people[steward], settings=settings,
                     json={"reason": "reviewed consent evidence and permitted purposes"})
                state = call("GET", f"/api/v1/contracts/{cid}", people[REQUESTER], settings=settings)
        states.append(state)
    return states


def _approvers(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The approvals (first of two, and final) of the current revision, from its history."""
    return [h for h in state.get("history", []) if h["action"] in ("endorse", "approve") and h["revision"] == state["revision"]]


def _who(actor: str, credential: str | None) -> str:
    return f"{actor} ({credential.replace(':', ' ', 1)})" if credential else actor


def print_contract(state: dict[str, Any]) -> None:
    terms = state["terms"]
    permits = ", ".join(p["purpose"] for p in terms["permitted"]) or "nothing"
    prohibits = ", ".join(terms["prohibited"]) or "nothing"
    ref = f"{state['id']}@{state['version']}"
    approvers = " + ".join(_who(h["actor"], h.get("credential")) for h in _approvers(state))
    say(f"   {ref:24} {state['status']:9} permits: {permits}; prohibits: {prohibits}")
    say(f"   {'':24} registered by {_who(state['registeredBy'], state.get('registeredWith'))}; "
        f"approved by {approvers or 'nobody yet'}")


# -- tokens ----------------------------------------------------------------------------------


def setup_tokens(conn: Any, settings: Settings) -> Settings:
    """The local admin token (what ``lineage serve`` would create) and an emitter token for
    Airflow, scoped to the pipeline's job namespace; returns settings whose ``token`` is
    Airflow's, for the transport.  Both live under ``LINEAGE_HOME`` (mode 0600) and are reused
    on the next run; neither is printed."""
    from lineage.airflow.runner import NAMESPACE
    from lineage.auth.local import ensure_local_admin, ensure_token_file, read_token_file

    ensure_local_admin(conn, settings)
    path = settings.home / "airflow-token"
    ensure_token_file(conn, path, name="demo-airflow", principal="airflow", roles=["emitter"], namespaces=[NAMESPACE],
                      created_by="lineage demo")
    say(f"   tokens: admin in {settings.admin_token_file}, Airflow's emitter (namespace {NAMESPACE}) in {path}")
    return settings.model_copy(update={"token": SecretStr(read_token_file(path) or "")})


# -- the server ------------------------------------------------------------------------------


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(settings: Settings, log_path: Path) -> subprocess.Popen | None:
    """Start ``lineage serve`` unless one already answers; ``None`` when reusing a running one."""
    if _healthy(settings.server_url):
        return None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LINEAGE_HOME": str(settings.home), "LINEAGE_PORT": str(settings.port), "LINEAGE_HOST": settings.host}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from lineage.cli import main; main()", "serve", "--log-level", "warning"],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _healthy(settings.server_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"`lineage serve` did not come up at {settings.server_url}; see {log_path}")
        time.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    # SIGINT, not SIGTERM: uvicorn re-raises the signal after its graceful shutdown, and only an
    # interrupt ends in a normal exit whose exit handlers release the embedded PostgreSQL.
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


# -- spool -----------------------------------------------------------------------------------


def replay_spool(settings: Settings) -> int:
    """Replay the pending spool with ``lineage spool replay``; return the events it delivered."""
    from lineage.airflow.spool import status

    pending = status(settings.spool_dir).pending
    if not pending:
        return 0
    say(f"   $ lineage spool replay --dir {settings.spool_dir}")
    # Replayed as Airflow, with its emitter token (in the environment, not on the command line).
    env = {**os.environ, "LINEAGE_HOME": str(settings.home)}
    if settings.token is not None:
        env["LINEAGE_TOKEN"] = settings.token.get_secret_value()
    done = subprocess.run(
        [sys.executable, "-c", "from lineage.cli import main; main()", "spool", "replay",
         "--dir", str(settings.spool_dir), "--url", settings.server_url],
        capture_output=True,
        text=True,
        env=env,
    )
    say("     " + (done.stderr.strip().splitlines() or ["(no output)"])[-1])
    if done.returncode != 0:
        say(f"     replay incomplete; the events stay in {settings.spool_dir} for the next run")
    return pending - status(settings.spool_dir).pending


# -- lineage printing ------------------------------------------------------------------------


def _graph(settings: Settings, direction: str, node: str) -> dict:
    import httpx

    from lineage.auth.local import auth_headers

    # Read with the local admin token (it holds `viewer`), not Airflow's emitter token.
    headers = auth_headers(settings.model_copy(update={"token": None}))
    r = httpx.get(api_url(settings.server_url, f"/api/v1/lineage/{direction}"), params={"nodeId": node}, headers=headers, timeout=30)
    r.raise_for_status()
    return r.json()


def render_tree(graph: dict, start: str) -> list[str]:
    """A downstream graph as an indented tree of ``dataset``/``job`` lines."""
    children: dict[str, list[str]] = {}
    for e in graph.get("edges", []):
        children.setdefault(e["origin"], []).append(e["destination"])
    lines: list[str] = []

    def label(node_id: str) -> str:
        node = parse_node_id(node_id)
        return f"[{node.type}] {node.namespace}:{node.name}"

    def walk(node: str, indent: str, seen: set[str]) -> None:
        kids = [c for c in sorted(children.get(node, [])) if c not in seen]
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{indent}{'└─' if last else '├─'} {label(child)}")
            walk(child, indent + ("   " if last else "│  "), seen | {child})

    lines.append(label(start))
    walk(start, "   ", {start})
    return lines


def print_lineage(settings: Settings, partner: Partner) -> None:
    start = partner.drop.node_id
    try:
        down = _graph(settings, "downstream", start)
    except Exception as exc:  # the demo explains, it does not crash at the last step
        say(f"   could not read lineage for {start}: {exc}")
        return
    for line in render_tree(down, start):
        say("   " + line)
    reached = {n["id"] for n in down.get("nodes", [])}
    if partner.model.node_id in reached:
        say(f"   => {partner.model.id} was trained from this source.")
    else:
        say("   => no model is built from this source: training stopped at the gate.")


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    parser = argparse.ArgumentParser(prog="python -m example_pipeline.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="LINEAGE_HOME to use (default: ~/.lineage or $LINEAGE_HOME)")
    args = parser.parse_args(argv)
    settings = Settings(home=args.home) if args.home else Settings()
    home = settings.home
    logs = home / "logs"
    say(f"lineage demo — state under {home}, server at {settings.server_url}")

    from lineage.airflow import runner
    from example_pipeline.drops import write_drop

    step(1, "Partner drops (generated, deterministic)")
    for p in PARTNERS.values():
        path = write_drop(p, home)
        say(f"   {p.drop.id:32} {p.rows} records  {path}")

    step(2, "Lineage server down: ingest still runs, events are spooled")
    from lineage.store import open_database

    with open_database(settings, migrate=True) as db, db.connection() as conn:
        settings = setup_tokens(conn, settings)
    if _healthy(settings.server_url):
        say(f"   a server is already running at {settings.server_url}; events go straight to it")
    env = runner.airflow_env(settings)
    first = runner.run([PARTNERS["acme"].dag_ids[0]], env, log_path=logs / "airflow-ingest.log")
    _print_runs(first)
    from lineage.airflow.spool import status

    spooled = status(settings.spool_dir).pending
    say(f"   {spooled} event(s) waiting in {settings.spool_dir}")
    server = start_server(settings, logs / "server.log")
    try:
        say(f"   started `lineage serve` at {settings.server_url}" if server else f"   reusing the server at {settings.server_url}")
        replayed = replay_spool(settings)
        say(f"   replayed {replayed} event(s); nothing was lost")

        step(3, "Source contracts: a requester registers, independent stewards approve")
        from lineage.auth.local import read_token_file

        admin = read_token_file(settings.admin_token_file)
        if admin is None:
            raise SystemExit(f"no admin token in {settings.admin_token_file}; run `lineage serve` once on this machine")
        people = setup_people(settings, admin)
        say(f"   the admin created API tokens (kept in {settings.home / 'tokens'}, mode 0600) for:")
        for name, who, role in PEOPLE:
            say(f"     {who:30} {role}")
        say("   each acts through the HTTP API with its own token; the server records who did what:")
        for state in setup_contracts(settings, people):
            print_contract(state)

        step(4, "Pipeline for both partners (gate → train)")
        rest = [d for p in PARTNERS.values() for d in p.dag_ids if d != PARTNERS["acme"].dag_ids[0]]
        result = runner.run(rest, env, log_path=logs / "airflow-pipeline.log")
        _print_runs(result)
        for job, decision in sorted(result.get("gate", {}).items()):
            if decision.get("allowed"):
                say(f"\n   Training allowed for {job}:")
                for line in decision.get("decision", "").splitlines():
                    if line.startswith(("ALLOWED", "  input", "  validation")):
                        say("     " + line.strip())
            else:
                say(f"\n   Training BLOCKED for {job}. The gate's decision:")
                for line in decision.get("decision", "").splitlines():
                    say("     " + line)
        late = replay_spool(settings)  # anything spooled during the run (should be none)
        if late:
            say(f"   replayed {late} late event(s)")

        step(5, "Lineage from each source")
        for p in PARTNERS.values():
            say(f"\n   {p.display_name}:")
            print_lineage(settings, p)
        _next_steps(settings, server is not None)
    finally:
        stop_server(server)
    return 0


def _print_runs(result: dict) -> None:
    for r in result.get("runs", []):
        tasks = ", ".join(f"{t}={s}" for t, s in r["tasks"].items())
        say(f"   {r['dag_id']:32} {r['state']:8} {r['seconds']:6.1f}s  ({tasks})")


def _next_steps(settings: Settings, stopping: bool) -> None:
    acme, love = PARTNERS["acme"], PARTNERS["lovematch"]
    say("\n== Next " + "=" * 70)
    say(f"   model card:        {acme.model_card.path(settings.home)}")
    say(f"   airflow logs:      {settings.home / 'logs'}")
    say("   explore (start the server first with `make serve` or `lineage serve`):")
    import importlib.util

    if importlib.util.find_spec("lineage.dashboard") is not None:
        say(f"     open {settings.server_url}/                     (dashboard)")
    say(f"     open {settings.server_url}/docs                 (HTTP API)")
    say(f"     lineage upstream {acme.model.node_id}")
    say(f"     lineage downstream {love.drop.node_id}")
    say(f"     curl -H \"Authorization: Bearer $(cat {settings.admin_token_file})\" '{settings.server_url}/api/v1/lineage?nodeId={acme.model.node_id}'")
    say("     lineage contracts list")
    say("     lineage gate log")
    say("     lineage whoami                                   (the local admin token)")
    say(f"     LINEAGE_TOKEN=$(cat {settings.home / 'tokens' / 'demo-steward-dpo'}) lineage contracts revoke {acme.contract_id} --reason '...'")
    say("       (a steward revokes ACME's contract; then `make demo`: ACME's training is blocked too)")
    if stopping:
        say("   (the demo stopped the server it started; run `make demo` again any time)")


if __name__ == "__main__":
    sys.exit(main())
