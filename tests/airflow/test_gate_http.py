"""The gate over HTTP: a worker with a URL and a token, no database credentials, failing closed.

The real server decides from contracts and lineage; the worker runs GX on its own data and
the server records the final decision.  Every way the answer can be missing, wrong or forged
blocks the run: the server down, a 500, a proxy's page, an answer without its fields, a token
without the role, a second call that fails.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from gate.gate_helpers import ACME, STEWARD, acme_frame, ingest, read_event, register
from lineage.airflow.gate_client import GateClient, GateUnreachable, from_connection, from_env

JOB = "ml-pipeline:train_model.train"
PURPOSE = "train_ai_system"


@pytest.fixture
def acme_ready(db):
    """ACME's contract approved, and its drop known to the store as an origin."""
    register(db, "acme-stock-photos.yaml", STEWARD)
    ingest(db, read_event("ml-pipeline:ingest.transfer", [ACME], []))


@pytest.fixture
def worker(live_server, tokens):
    return GateClient(live_server.url, tokens("airflow-worker", "emitter"))


def _decisions(db) -> list[dict]:
    from lineage.gate.service import recent

    with db.connection() as conn:
        return recent(conn)


def test_allowed_with_the_data_validated_on_the_worker_and_recorded_once(acme_ready, worker, db):
    answer = worker.decide(JOB, PURPOSE, [ACME], {ACME: acme_frame()})
    assert answer.allowed is True, answer.text
    [logged] = _decisions(db)
    assert logged["decisionId"] == answer.decision_id and logged["allowed"] is True
    assert [v["suite"] for v in logged["validations"]] == ["acme-stock-photos.photos"]
    assert logged["validations"][0]["success"] is True
    assert "dataQualityAssertions" in answer.facets[ACME]["inputFacets"]


def test_rows_from_an_unapproved_source_are_blocked_and_the_log_keeps_the_failure(acme_ready, worker, db):
    answer = worker.decide(JOB, PURPOSE, [ACME], {ACME: acme_frame(contract="lovematch-photos")})
    assert answer.allowed is False and "expectation_failed" in answer.text
    [logged] = _decisions(db)
    assert logged["allowed"] is False and logged["validations"][0]["success"] is False


def test_without_data_one_call_decides_and_records(acme_ready, worker, db):
    answer = worker.decide(JOB, PURPOSE, [ACME])
    assert answer.allowed is True and len(_decisions(db)) == 1


def test_a_refusal_by_contract_needs_no_validation(db, worker):
    ingest(db, read_event("ml-pipeline:ingest.transfer", [ACME], []))  # no contract at all
    answer = worker.decide(JOB, PURPOSE, [ACME], {ACME: acme_frame()})
    assert answer.allowed is False and "no_contract" in answer.text
    assert [d["allowed"] for d in _decisions(db)] == [False]


# -- the worker's report is checked: missing or inconsistent results block ------------------


def _complete(live_server, token, **body):
    base = {"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validated": [ACME], "validations": []}
    return httpx.post(f"{live_server.url}/api/v1/gate/complete", json={**base, **body},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_worker_that_reports_no_result_for_a_planned_suite_is_blocked(acme_ready, live_server, tokens, db):
    r = _complete(live_server, tokens("w", "emitter"))
    assert r.status_code == 200 and r.json()["allowed"] is False and r.json()["final"] is True
    assert "suite_not_reported" in json.dumps(r.json()["reasons"])
    assert [d["allowed"] for d in _decisions(db)] == [False]


def test_a_suite_reported_as_passed_with_a_failed_expectation_is_blocked(acme_ready, live_server, tokens):
    forged = {"dataset": ACME, "suite": "acme-stock-photos.photos", "contract": "acme-stock-photos@1", "success": True,
              "results": [{"type": "expect_column_values_to_be_in_set", "column": "source_contract_id", "success": False}]}
    r = _complete(live_server, tokens("w", "emitter"), validations=[forged])
    assert r.json()["allowed"] is False


def test_a_report_about_another_dataset_is_a_400_naming_the_field(acme_ready, live_server, tokens):
    other = {"dataset": "dataset:x:y", "suite": "s", "success": True, "results": []}
    r = _complete(live_server, tokens("w", "emitter"), validations=[other])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "validations.dataset"


# -- failing closed -------------------------------------------------------------------------


def test_no_lineage_url_fails_closed_with_what_to_set(monkeypatch):
    monkeypatch.delenv("LINEAGE_URL", raising=False)
    with pytest.raises(GateUnreachable, match="LINEAGE_URL") as exc:
        from_env()
    assert "never connect to the lineage database" in str(exc.value)


def test_server_down_fails_closed_saying_it_could_not_be_reached():
    with pytest.raises(GateUnreachable, match="could not be reached at http://127.0.0.1:9/api/v1/gate/check") as exc:
        GateClient("http://127.0.0.1:9", "lin_x", timeout=2).decide(JOB, PURPOSE, [ACME])
    assert "LINEAGE_URL" in str(exc.value)


@pytest.mark.parametrize("role", ["viewer", "requester", "auditor", None])
def test_a_token_without_a_gate_role_fails_closed_naming_the_roles(role, acme_ready, live_server, tokens):
    token = tokens(f"t-{role}", role) if role else None
    with pytest.raises(GateUnreachable, match="refused the gate's token") as exc:
        GateClient(live_server.url, token).decide(JOB, PURPOSE, [ACME], {ACME: acme_frame()})
    assert "`emitter`" in str(exc.value) and "`steward`" in str(exc.value)


class _Fake:
    """A server on loopback answering /check and /complete as told (or forwarding to ``upstream``)."""

    def __init__(self, answers: dict[str, tuple[int, bytes] | str], upstream: str | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                route = self.path.rsplit("/", 1)[-1]
                action = answers.get(route, (404, b"{}"))
                if action == "forward":
                    r = httpx.post(upstream + self.path, content=body, timeout=30,
                                   headers={"Authorization": self.headers["Authorization"], "Content-Type": "application/json"})
                    status, out = r.status_code, r.content
                else:
                    status, out = action
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _allowed(**over) -> bytes:
    return json.dumps({"allowed": True, "final": True, "decisionId": "d", "job": JOB, "purpose": PURPOSE, **over}).encode()


@pytest.mark.parametrize("status, body, says", [
    (500, b'{"code": 500, "message": "boom"}', "HTTP 500"),
    (502, b"<html>Bad Gateway</html>", "HTTP 502"),
    (200, b"<html>welcome to nginx</html>", "not a JSON object"),
    (200, b'["allowed", true]', "not a JSON object"),
    (200, b'{"allowed": true}', "lacks"),
    (200, b'{"allowed": true, "final": true}', "lacks"),
    (200, _allowed(allowed="true"), "lacks"),
    (200, _allowed(decisionId=None), "lacks"),
    (200, _allowed(job="ml-pipeline:other"), "another job"),
    (200, _allowed(purpose="essential.service"), "another job or purpose"),
    (200, _allowed(final=None), "cannot use"),
    (200, _allowed(final=False), "cannot use"),  # not final, and no plan
    (200, b'{"allowed": true, "final": true, "decisionId": "d", "job": "', "not a JSON object"),  # truncated
])
def test_a_server_answer_that_is_wrong_missing_or_forged_blocks(status, body, says):
    fake = _Fake({"check": (status, body)})
    try:
        with pytest.raises(GateUnreachable, match=says):
            GateClient(fake.url, "lin_x").decide(JOB, PURPOSE, [ACME])
    finally:
        fake.close()


def test_the_second_call_failing_blocks_even_though_the_contracts_allowed(acme_ready, live_server, tokens, db):
    fake = _Fake({"check": "forward", "complete": (503, b"<html>Service Unavailable</html>")}, live_server.url)
    try:
        with pytest.raises(GateUnreachable, match="HTTP 503"):
            GateClient(fake.url, tokens("w", "emitter")).decide(JOB, PURPOSE, [ACME], {ACME: acme_frame()})
    finally:
        fake.close()
    assert _decisions(db) == [], "nothing allowed is logged that the worker did not complete"


def test_an_airflow_connection_gives_url_and_token():
    class Conn:
        conn_id, host, schema, port, password = "lineage", "lineage.internal", "https", 8443, "lin_tok"

    client = from_connection(Conn())
    assert (client.url, client.token) == ("https://lineage.internal:8443", "lin_tok")
    Conn.host = "http://lineage:5000/"
    assert from_connection(Conn()).url == "http://lineage:5000"
    Conn.host = ""
    with pytest.raises(GateUnreachable, match="has no host"):
        from_connection(Conn())


# -- review (rv9): a worker holding an emitter token, and answers that are not the server's ----


def test_a_final_allowance_without_a_plan_when_the_worker_has_data_blocks():
    """The worker asked to validate here: `final: true, allowed: true` would skip GX entirely."""
    fake = _Fake({"check": (200, _allowed())})
    try:
        with pytest.raises(GateUnreachable, match="without a validation plan"):
            GateClient(fake.url, "lin_x").decide(JOB, PURPOSE, [ACME], {ACME: acme_frame()})
    finally:
        fake.close()


@pytest.mark.parametrize("status, body, says", [
    (200, _allowed(decisionId=""), "lacks"),
    (307, b"", "HTTP 307"),  # a redirect is never followed, wherever it points
    (200, b'<!doctype html><html>{"allowed": true}</html>', "not a JSON object"),
])
def test_an_empty_id_a_redirect_or_a_proxys_page_blocks(status, body, says):
    fake = _Fake({"check": (status, body)})
    try:
        with pytest.raises(GateUnreachable, match=says):
            GateClient(fake.url, "lin_x").decide(JOB, PURPOSE, [ACME])
    finally:
        fake.close()


def test_a_worker_that_validates_nothing_is_logged_as_having_validated_nothing(acme_ready, live_server, tokens, db):
    """`validated: []` skips GX (the worker is trusted with the data); the decision log and the
    text say so outright, so an auditor sees an allowance that rests on no data check."""
    r = _complete(live_server, tokens("w", "emitter"), validated=[])
    assert r.status_code == 200 and r.json()["allowed"] is True
    assert f"no data validated on {ACME}" in r.json()["text"]
    [logged] = _decisions(db)
    assert logged["validations"] == [] and logged["inputs"]["unvalidated"] == [ACME]
    worker = GateClient(live_server.url, tokens("w2", "emitter")).decide(JOB, PURPOSE, [ACME], {ACME: acme_frame()})
    assert worker.allowed and "no data validated" not in worker.text
    assert _decisions(db)[0]["inputs"]["unvalidated"] == []


def test_a_contract_revoked_between_check_and_complete_blocks_the_completion(acme_ready, live_server, tokens, db):
    from lineage.contracts import registry

    token = tokens("w", "emitter")
    check = httpx.post(f"{live_server.url}/api/v1/gate/check", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                       json={"job": JOB, "purpose": PURPOSE, "inputs": [ACME], "validate_on_worker": True}).json()
    assert check["final"] is False and check["allowed"] is True
    with db.connection() as conn:
        registry.revoke(conn, "acme-stock-photos", STEWARD, "licence withdrawn mid-run")
    passed = {"dataset": ACME, "suite": "acme-stock-photos.photos", "contract": "acme-stock-photos@1", "success": True,
              "results": [{"type": "expect_column_to_exist", "success": True}]}
    r = _complete(live_server, token, validations=[passed])
    assert r.json()["allowed"] is False and "revoked" in json.dumps(r.json()["reasons"])
    # Replaying the completion, or completing with no check at all, decides afresh too.
    assert _complete(live_server, token, validations=[passed]).json()["allowed"] is False
    assert [d["allowed"] for d in _decisions(db)] == [False, False]


def test_forged_passing_results_never_allow_a_run_the_contracts_forbid(db, live_server, tokens):
    """No check first, a made-up decision, every suite 'passed': the contracts still decide."""
    ingest(db, read_event("ml-pipeline:ingest.transfer", [ACME], []))  # lineage, but no contract
    token = tokens("w", "emitter")
    forged = {"dataset": ACME, "suite": "acme-stock-photos.photos", "success": True, "results": []}
    r = _complete(live_server, token, validations=[forged])
    assert r.status_code == 200 and r.json()["allowed"] is False and "no_contract" in r.json()["text"]
    r = _complete(live_server, token, validations=[], decisionId="00000000-0000-0000-0000-000000000000")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body.decisionId"


def test_data_for_a_dataset_that_is_not_an_input_blocks_rather_than_going_unchecked(acme_ready, live_server, tokens, db):
    """A typo in a `data` key used to leave the real input unvalidated, and the run allowed."""
    worker = GateClient(live_server.url, tokens("w", "emitter"))
    with pytest.raises(GateUnreachable, match="every `data` key must be one of the inputs"):
        worker.decide(JOB, PURPOSE, [ACME], {ACME.replace("photos", "photo"): acme_frame()})
    assert _decisions(db) == [], "nothing is allowed without the worker completing"
