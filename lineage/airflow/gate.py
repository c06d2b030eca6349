"""``ContractGateOperator``: the contract gate, standing in front of every training task.

Put it upstream of the task that trains; the training task runs only if the gate succeeds::

    gate = ContractGateOperator(
        task_id="contract_gate",
        job="train_model.train",                      # the gated job (dag_id.task_id; NAMESPACE: optional)
        purpose="train_ai_system",                    # a Fides data use
        inputs=["curated:acme/smile_training_set"],   # what the gated job reads
        data={"curated:acme/smile_training_set": "/lake/curated/acme/training_set.csv"},  # optional
    )
    gate >> train

The worker holds no database credentials.  It asks the lineage server (``LINEAGE_URL``, with
``LINEAGE_TOKEN``: a role in ``emitter`` or ``steward``; or the Airflow connection
``lineage_conn_id``) for the contract-and-lineage decision, runs the Great Expectations suites
of the covering contracts on ``data`` here, where the data is, and has the server record the
final decision (:mod:`lineage.airflow.gate_client`).  Then:

* allowed — logs the decision and returns a summary (XCom) the training task can put in its
  model card;
* blocked — raises :class:`AirflowFailException` (no retries) whose message is the readable
  decision, and reports a FAIL event carrying a ``contractGate`` run facet with every reason
  and, on each input, the gate's ``sourceContract`` and ``dataQualityAssertions`` facets;
* anything else — no ``LINEAGE_URL``, the server unreachable, slow, answering non-2xx or
  something unparsable, a token without the role, unreadable data — also blocked, with a
  message saying what to check: the gate fails closed.  It never falls back to a database.

``data`` maps an input to a CSV or Parquet path, or to a callable returning one (resolved when
the task runs).  Great Expectations loads inside ``execute``, never at parse time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from openlineage.client.event_v2 import InputDataset

from lineage import PRODUCER
from lineage.airflow.facets import ContractGateRunFacet
from lineage.errors import LineageError
from lineage.events.ids import parse_node_id

TRAINING_PURPOSE = "train_ai_system"

# Decisions taken in this process, by job: lets an in-process runner (the demo) print why a
# run was blocked without parsing logs.  Each entry is the summary ``execute`` built.
DECISIONS: dict[str, dict[str, Any]] = {}

DataRef = str | os.PathLike | Callable[[], Any]


class ContractGateOperator(BaseOperator):
    """Ask the lineage server's gate for ``job`` and fail closed unless it allows ``purpose``."""

    template_fields: Sequence[str] = ("job", "purpose")
    ui_color = "#fde2e1"

    def __init__(
        self,
        *,
        job: str,
        inputs: Sequence[str],
        purpose: str = TRAINING_PURPOSE,
        data: Mapping[str, DataRef] | None = None,
        lineage_conn_id: str | None = None,
        lineage_url: str | None = None,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)  # a refusal does not change on retry
        super().__init__(**kwargs)
        if not inputs:
            raise ValueError(f"ContractGateOperator `{kwargs.get('task_id')}`: name the datasets the gated job reads in `inputs`")
        self.job = job
        self.purpose = purpose
        self.inputs = list(inputs)
        self.data = dict(data or {})
        self.lineage_conn_id = lineage_conn_id
        self.lineage_url = lineage_url
        self.timeout = timeout
        self._summary: dict[str, Any] | None = None
        self._facets: dict[str, dict] = {}

    def execute(self, context: Any) -> dict[str, Any]:
        from lineage.airflow.gate_client import GateUnreachable

        job = self._qualified_job()
        try:
            client = self._client()
            answer = client.decide(job, self.purpose, self.inputs, _load_frames(self.data))
        except GateUnreachable as exc:  # fail closed, saying what to check
            self._blocked(f"{exc}; training is blocked because the gate fails closed")
        except Exception as exc:  # fail closed: not knowing is a refusal
            self._blocked(f"the gate could not decide ({type(exc).__name__}: {exc}); training is blocked because the gate fails closed")
        self._facets = {k.removeprefix("dataset:"): v for k, v in answer.facets.items() if isinstance(v, dict)}
        self._record(answer.allowed, answer.reasons, answer.text, answer.decision_id)
        if not answer.allowed:
            raise AirflowFailException(answer.text or f"contract gate BLOCKED {job} for `{self.purpose}`")
        self.log.info("contract gate allowed %s for `%s`:\n%s", job, self.purpose, answer.text)
        return dict(self._summary or {})

    def _blocked(self, reason: str) -> None:
        self._record(False, [reason], reason, None)
        raise AirflowFailException(f"contract gate BLOCKED {self._qualified_job()} for `{self.purpose}`: {reason}")

    def _client(self) -> Any:
        from lineage.airflow import gate_client

        if self.lineage_conn_id:
            from airflow.sdk import BaseHook

            client = gate_client.from_connection(BaseHook.get_connection(self.lineage_conn_id))
        else:
            client = gate_client.from_env(self.lineage_url)
        client.timeout = self.timeout
        return client

    def _qualified_job(self) -> str:
        """``NAMESPACE:NAME`` as the gate logs it; a bare name gets the provider's namespace."""
        if ":" in self.job:
            return self.job
        try:
            from airflow.providers.openlineage import conf

            return f"{conf.namespace()}:{self.job}"
        except Exception:
            return f"default:{self.job}"

    def _record(self, allowed: bool, reasons: list[str], text: str, decision_id: str | None) -> None:
        self._summary = {
            "allowed": allowed,
            "job": self._qualified_job(),
            "purpose": self.purpose,
            "inputs": list(self.inputs),
            "decision_id": decision_id,
            "reasons": reasons,
            "decision": text,
        }
        DECISIONS[self.job] = dict(self._summary)

    # -- OpenLineage ---------------------------------------------------------------------------
    def _inputs(self) -> list[InputDataset]:
        out = []
        for dataset in dict.fromkeys([*self.inputs, *self.data]):
            try:
                node = parse_node_id(dataset if dataset.startswith("dataset:") else f"dataset:{dataset}", "inputs", kind="dataset")
            except LineageError:  # an input the gate could not read either: no lineage for it
                self.log.warning("input `%s` is not a dataset id; left out of OpenLineage", dataset)
                continue
            extra = self._facets.get(f"{node.namespace}:{node.name}", {})
            out.append(InputDataset(namespace=node.namespace, name=node.name, facets=extra.get("facets", {}), inputFacets=extra.get("inputFacets", {})))
        return out

    def _run_facets(self) -> dict:
        if self._summary is None:
            return {}
        s = self._summary
        return {
            "contractGate": ContractGateRunFacet(
                allowed=s["allowed"], purpose=s["purpose"], inputs=s["inputs"], reasons=s["reasons"], decision=s["decision"], producer=PRODUCER
            )
        }

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return OperatorLineage(inputs=self._inputs())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return OperatorLineage(inputs=self._inputs(), run_facets=self._run_facets())

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return OperatorLineage(inputs=self._inputs(), run_facets=self._run_facets())


def _load_frames(data: Mapping[str, DataRef]) -> dict[str, Any]:
    if not data:
        return {}
    import pandas as pd

    frames = {}
    for dataset, ref in data.items():
        path = Path(ref() if callable(ref) else ref)
        frames[dataset] = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return frames
