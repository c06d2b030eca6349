"""Ask the lineage server's gate over HTTP and validate the data where it is: the worker's half.

A worker holds the server's URL and an API token (a role in ``emitter`` or ``steward``), never
database credentials.  :meth:`GateClient.decide`:

1. ``POST /api/v1/gate/check`` with ``validate_on_worker`` when there is data to validate;
2. if the contracts allow the run and the answer is not final, runs the ``plan``'s GX suites on
   the local data (every covering contract's suite; the provenance suite when no contract has
   one and the data has the provenance column), then
3. ``POST /api/v1/gate/complete`` with the results; the server decides afresh, combines, and
   records — that answer is final.

It fails closed: :class:`GateUnreachable` (no URL, network error, timeout, non-2xx, an answer
that is not JSON or lacks a field, a token without the role) is raised with a message saying
what to check, and the caller blocks the run.  An answer is trusted only if it is a JSON
object with ``allowed`` strictly ``true``, ``final`` strictly ``true``, a ``decisionId`` and the
job and purpose that were asked: a proxy's page or a truncated body never lets a run through.

Configuration: ``LINEAGE_URL`` and ``LINEAGE_TOKEN`` in the worker's environment, or an Airflow
connection (see :func:`from_connection`).  Great Expectations loads only when a suite runs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import httpx

from lineage.config import api_url

log = logging.getLogger(__name__)
ROLES_HINT = "an API token with the role `emitter` or `steward`"


class GateUnreachable(Exception):
    """The gate could not give a trustworthy answer; the run must be blocked."""


@dataclass(frozen=True)
class GateAnswer:
    allowed: bool
    decision_id: str
    text: str
    reasons: list[str]
    facets: dict[str, Any]
    raw: dict[str, Any]


def from_env(url: str | None = None, token: str | None = None) -> "GateClient":
    """The client for ``url``/``token`` or ``LINEAGE_URL``/``LINEAGE_TOKEN``; no URL is an error."""
    url = url or os.environ.get("LINEAGE_URL")
    token = token or os.environ.get("LINEAGE_TOKEN")
    if not url:
        raise GateUnreachable(
            "no lineage server is configured for the gate: set LINEAGE_URL (and LINEAGE_TOKEN, " + ROLES_HINT + ") "
            "in the worker's environment, or pass lineage_conn_id; workers never connect to the lineage database")
    return GateClient(url, token)


def from_connection(conn: Any) -> "GateClient":
    """An Airflow connection: ``host`` is the server's URL (or host name, with ``schema`` and
    ``port``), ``password`` the API token."""
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        raise GateUnreachable(f"the Airflow connection `{getattr(conn, 'conn_id', '?')}` has no host: "
                              "set it to the lineage server's URL, e.g. http://lineage:5000")
    if "://" not in host:
        host = f"{getattr(conn, 'schema', None) or 'http'}://{host}" + (f":{conn.port}" if getattr(conn, "port", None) else "")
    return GateClient(host, getattr(conn, "password", None) or None)


class GateClient:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def decide(self, job: str, purpose: str, inputs: Sequence[str], frames: Mapping[str, Any] | None = None) -> GateAnswer:
        frames = dict(frames or {})
        body = {"job": job, "purpose": purpose, "inputs": list(inputs), "validate_on_worker": bool(frames)}
        answer = self._post("check", body, job, purpose)
        if answer.get("final") is True:
            if frames and answer["allowed"] is True:
                # We asked to validate here: an allowance without a plan means no suite ran
                # anywhere (a server ignoring `validate_on_worker`, or an answer not from it).
                raise GateUnreachable(f"the lineage server at {self.url} allowed the run without a validation plan although "
                                      "this worker has data to validate; check that it runs this version of lineage")
            return _answer(answer)
        if answer.get("final") is not False or answer.get("allowed") is not True or not isinstance(answer.get("plan"), dict):
            raise GateUnreachable(f"the lineage server at {self.url} gave an answer the gate cannot use "
                                  "(neither a final decision nor a validation plan); check that it runs this version of lineage")
        validated, results = run_plan(answer["plan"], frames)
        final = self._post("complete", {"job": job, "purpose": purpose, "inputs": list(inputs),
                                        "validated": validated, "validations": results}, job, purpose)
        if final.get("final") is not True:
            raise GateUnreachable(f"the lineage server at {self.url} did not record a final decision; the run is blocked")
        return _answer(final)

    def _post(self, route: str, body: dict, job: str, purpose: str) -> dict[str, Any]:
        url = api_url(self.url, f"api/v1/gate/{route}")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise GateUnreachable(
                f"the lineage server could not be reached at {url} ({type(exc).__name__}: {exc}): check that LINEAGE_URL "
                f"points at a running `lineage serve` reachable from this worker") from None
        if r.status_code in (401, 403):
            raise GateUnreachable(
                f"the lineage server at {self.url} refused the gate's token (HTTP {r.status_code}: {_message(r)}): "
                f"LINEAGE_TOKEN must be {ROLES_HINT}" + ("" if self.token else "; none was set"))
        if not 200 <= r.status_code < 300:
            raise GateUnreachable(f"the lineage server at {url} answered HTTP {r.status_code} ({_message(r)}): "
                                  "check the server's log and that LINEAGE_URL points at `lineage serve`, not another service")
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GateUnreachable(f"the lineage server at {url} answered something that is not a JSON object: "
                                  "check that LINEAGE_URL points at `lineage serve`, not a proxy's page")
        missing = [k for k in ("allowed", "decisionId", "job", "purpose") if k not in answer]
        if missing or not isinstance(answer["allowed"], bool) or not isinstance(answer["decisionId"], str) or not answer["decisionId"]:
            raise GateUnreachable(f"the lineage server's answer from {url} lacks {missing or ['a well-formed allowed/decisionId']}; "
                                  "the gate cannot trust it")
        if answer["job"] != job or answer["purpose"] != purpose:
            raise GateUnreachable(f"the lineage server's answer from {url} is about another job or purpose "
                                  f"({answer['job']!r}, {answer['purpose']!r}); the gate cannot trust it")
        return answer


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"][:300]
    except ValueError:
        pass
    return r.text[:200].replace("\n", " ") or "no body"


def _answer(raw: dict[str, Any]) -> GateAnswer:
    reasons = []
    for r in raw.get("reasons") or []:
        if isinstance(r, dict) and r.get("message"):
            reasons.append(f"[{r.get('code')}] {r['message']}" if r.get("code") else str(r["message"]))
        else:
            reasons.append(str(r))
    facets = raw.get("facets") if isinstance(raw.get("facets"), dict) else {}
    return GateAnswer(allowed=raw["allowed"] is True, decision_id=raw["decisionId"], text=str(raw.get("text") or ""),
                      reasons=reasons, facets=facets, raw=raw)


def run_plan(plan: Mapping[str, Any], frames: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Run the plan's suites on the local frames; ``(inputs validated, results as dicts)``."""
    from lineage.contracts.compile import PROVENANCE_COLUMN, PROVENANCE_SUITE
    from lineage.gate import runner

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    local = {_dataset_id(k): v for k, v in frames.items()}
    planned = {_dataset_id(k) for k in plan}
    stray = sorted(k for k in local if k not in planned)
    if stray:
        # Data the caller meant to be checked would otherwise be skipped without a word (a typo
        # in a `data` key, a dataset not among the inputs): refuse rather than allow unchecked.
        raise GateUnreachable(f"data was given for {stray}, which the gate's plan does not name (its inputs: "
                              f"{sorted(planned)}); every `data` key must be one of the inputs, so the run is blocked")
    validated, results = [], []
    for inp, step in plan.items():
        frame = local.get(_dataset_id(inp))
        if frame is None:
            continue
        validated.append(inp)
        suites = [(s["suite"], s.get("contract")) for s in step.get("suites", [])]
        columns = list(getattr(frame, "columns", []))
        if not suites and PROVENANCE_COLUMN in columns:
            suites.append((PROVENANCE_SUITE, None))
        for suite, ref in suites:
            outcome = runner.validate(inp, frame, suite, list(step.get("approved", [])), ref).as_dict()
            # NaN or infinities in observed values are not JSON, and PostgreSQL's jsonb refuses them.
            results.append(json.loads(json.dumps(outcome, default=str), parse_constant=lambda _: None))
    return validated, results


def _dataset_id(value: str) -> str:
    return value if value.startswith("dataset:") else f"dataset:{value}"
