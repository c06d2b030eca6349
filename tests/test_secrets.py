"""A database password never reaches a terminal, a log, a response or the decision log.

The password is given the ways an operator gives it (URL, ``?password=``, libpq key=value)
and the store is made unreachable the ways it happens (a closed port; a driver error that quotes
the connection string); then every output the user or an auditor can see is searched for it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import psycopg
import pytest

from lineage.config import Settings, redact_text, redact_url

PW = "Zq7-s3cr3t~pw"
INPUT = "dataset:partner-drops:acme/photos"
GATE_ARGS = ["gate", "check", "--job", "ml:train", "--purpose", "train_ai_system", "--input", INPUT]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


def _unreachable_urls() -> list[str]:
    port = _closed_port()
    return [
        f"postgresql://lineage:{PW}@127.0.0.1:{port}/lineage",
        f"host=127.0.0.1 port={port} user=lineage password={PW} dbname=lineage connect_timeout=1",
        f"postgresql://lineage@127.0.0.1:{port}/lineage?password={PW}&connect_timeout=1",
    ]


# -- the masking functions ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@db.example:5432/lineage", "postgresql://u:***@db.example:5432/lineage"),
        ("postgresql+psycopg://u:p%40ss%2Fw@db/x", "postgresql+psycopg://u:***@db/x"),
        ("postgresql://u@db/x?sslmode=require&password=pw&application_name=a",
         "postgresql://u@db/x?sslmode=require&password=***&application_name=a"),
        ("host=db port=5432 user=u password=pw dbname=x", "host=db port=5432 user=u password=*** dbname=x"),
        ("host=db password = 'p w\\'q' dbname=x", "host=db password = *** dbname=x"),
        ("postgresql://u@/x?host=/tmp/sock", "postgresql://u@/x?host=/tmp/sock"),
        ("postgresql://postgres:@/postgres?host=/tmp", "postgresql://postgres:@/postgres?host=/tmp"),
    ],
)
def test_redact_url_masks_every_form(url, masked):
    assert redact_url(url) == masked


def test_redact_text_masks_the_password_wherever_a_driver_quotes_it():
    url = "postgresql://u:p%40ss-W0rd@db/x"
    text = 'connection failed for "p@ss-W0rd"; tried postgresql://u:p%40ss-W0rd@db/x and p%40ss-W0rd'
    out = redact_text(text, url)
    assert "p@ss-W0rd" not in out and "p%40ss-W0rd" not in out and out.count("***") == 3
    kv = "host=db password='its a secret' user=u"
    assert redact_text(f"dsn {kv} failed; its a secret", kv) == "dsn host=db password=*** user=u failed; ***"
    assert redact_text("nothing secret here", None) == "nothing secret here"


# -- the CLI, as a user runs it -----------------------------------------------------------------
def _lineage(args: list[str], url: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "LINEAGE_DATABASE_URL": url, "LINEAGE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "lineage.cli", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_never_prints_the_password(tmp_path):
    urls = _unreachable_urls()
    runs = [(url, GATE_ARGS) for url in urls] + [(url, ["contracts", "list"]) for url in urls]
    runs += [(urls[0], [*GATE_ARGS, "--json"]), (urls[0], ["upstream", INPUT])]
    for url, args in runs:
        r = _lineage(args, url, tmp_path)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (args, r.stdout, r.stderr)
        assert PW not in r.stdout and PW not in r.stderr, (url, args, r.stdout, r.stderr)
        if args == GATE_ARGS:
            assert r.returncode == 1 and "[store_unavailable]" in r.stdout and "***" in r.stdout


# -- the gate service ---------------------------------------------------------------------------
def _assert_clean(decision, caplog) -> None:
    from lineage.gate.facets import input_facets

    assert decision.allowed is False
    for text in (decision.render(), json.dumps(decision.as_dict(), default=str), json.dumps(input_facets(decision)), caplog.text):
        assert PW not in text, text


def test_gate_decision_and_logs_never_hold_the_password(tmp_path, caplog):
    from lineage.gate.service import check_gate

    caplog.set_level(logging.DEBUG)
    for url in _unreachable_urls():
        settings = Settings(home=tmp_path, database_url=url)
        decision = check_gate(settings, "ml:train", "train_ai_system", [INPUT], connect_timeout=1)
        assert decision.reasons[0].code == "store_unavailable"
        _assert_clean(decision, caplog)


@pytest.mark.parametrize("exc_type", [RuntimeError, ValueError])
def test_unexpected_gate_error_quoting_the_url_is_masked(tmp_path, caplog, exc_type):
    from lineage.gate import service
    from lineage.store.db import Database

    caplog.set_level(logging.DEBUG)
    url = f"postgresql://lineage:{PW}@127.0.0.1:{_closed_port()}/lineage"

    def leaky_connection():  # a store whose driver puts the whole connection string in its errors
        raise exc_type(f"could not use {url} (password {PW} tried)")

    # A Database in all but its connection: the gate takes it as the open store it was given.
    db = Database.__new__(Database)
    db.url, db.connection = url, leaky_connection  # type: ignore[method-assign]
    decision = service.check_gate(db, "ml:train", "train_ai_system", [INPUT])
    assert decision.reasons[0].code == "gate_error" and exc_type.__name__ in decision.render()
    assert "could not use postgresql://lineage:***@" in decision.render()
    _assert_clean(decision, caplog)


# -- the HTTP API -------------------------------------------------------------------------------
class _FailingPool:
    """A pool whose connections fail with an error text that quotes the connection string."""

    def __init__(self, url: str) -> None:
        self.url = url

    def connection(self, *args, **kwargs):
        raise psycopg.OperationalError(f"connection to server failed: {self.url} (password {PW})")


def test_http_api_never_answers_or_logs_the_password(tmp_path, db_url, auth_headers, caplog):
    import httpx

    from lineage.api.app import create_app
    from lineage.store.db import Database
    from tests_support import LiveServer

    caplog.set_level(logging.DEBUG)
    # The embedded server trusts local connections, so a URL holding a password works.
    from lineage.store.roles import Roles, role_url

    url = role_url(db_url, Roles().app, password=PW)
    assert PW in url
    settings = Settings(home=tmp_path, database_url=url)
    db = Database(url, min_size=1, max_size=2)
    try:
        with LiveServer(create_app(settings, db=db)) as server, httpx.Client(base_url=server.url, timeout=60, headers=auth_headers) as c:
            body = {"job": "ml:train", "purpose": "train_ai_system", "inputs": [INPUT]}
            assert c.post("/api/v1/gate/check", json=body).json()["allowed"] is False  # no contract: recorded
            real_pool, db._pool = db._pool, _FailingPool(url)
            try:
                answers = [
                    c.post("/api/v1/gate/check", json=body),
                    c.get("/api/v1/health"),
                    c.get("/api/v1/contracts"),
                    c.get("/api/v1/gate/decisions"),
                ]
            finally:
                db._pool = real_pool
            assert answers[0].status_code == 200 and answers[0].json()["reasons"][0]["code"] == "store_unavailable"
            assert [a.status_code for a in answers[1:]] == [503, 503, 503]
            for a in answers:
                assert PW not in a.text, a.text
            # The answer names the failure without the driver's text; that goes to the log, masked.
            assert "unreachable" in answers[1].json()["message"] and "postgres" not in answers[1].json()["message"]
            stored = c.get("/api/v1/gate/decisions").json()["decisions"]
        assert stored and PW not in json.dumps(stored)
        assert PW not in caplog.text and "***" in caplog.text
        with psycopg.connect(url) as conn:  # the decision log, read as an auditor would
            rows = conn.execute("SELECT row_to_json(d)::text FROM gate_decisions d").fetchall()
        assert rows and not any(PW in r[0] for r in rows)
    finally:
        db.close()
