"""``ContractGateOperator``: the contract gate, standing in front of every training task.

Put it upstream of the task that trains; the training task runs only if the gate succeeds::

    gate = ContractGateOperator(
        task_id="contract_gate",
        job="train_model__acme.train",          # the gated job (dag_id.task_id; NAMESPACE: optional)
        purpose="train_ai_system",              # a Fides data use
        inputs=["curated:acme/smile_training_set"],  # what the gated job reads
        data={"curated:acme/smile_training_set": "/lake/curated/acme/training_set.csv"},  # optional
    )
    gate >> train

It asks :func:`lineage.gate.service.check_gate`, which follows lineage upstream from each input
to its original sources, whether every source's contract permits the purpose (and, given data,
whether the rows conform — e.g. every row's ``source_contract_id`` is an approved contract),
then:

* allowed — logs the decision and returns a summary (XCom) the training task puts in its
  model card;
* blocked — raises :class:`AirflowFailException` (no retries) whose message is the readable
  decision, and reports a FAIL event carrying a ``contractGate`` run facet with every reason
  and, on each input, the gate's ``sourceContract`` and ``dataQualityAssertions`` facets;
* any error while deciding (registry unreachable, gate not installed, unreadable data) — also
  blocked: the gate fails closed.

Great Expectations is imported by the gate service, inside ``execute``: never at parse time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from openlineage.client.event_v2 import InputDataset

from lineage import PRODUCER
from lineage.airflow.datasets import ContractGateRunFacet
from lineage.airflow.pipeline import TRAINING_PURPOSE
from lineage.errors import LineageError
from lineage.events.ids import parse_node_id

DEFAULT_GATE = "lineage.gate.service.check_gate"

# Decisions taken in this process, by job: lets an in-process runner (the demo) print why a
# run was blocked without parsing logs.  Each entry is the summary ``execute`` built.
DECISIONS: dict[str, dict[str, Any]] = {}


class ContractGateOperator(BaseOperator):
    """Run the contract gate for ``job`` and fail closed unless it allows ``purpose``."""

    template_fields: Sequence[str] = ("job", "purpose")
    ui_color = "#fde2e1"

    def __init__(
        self,
        *,
        job: str,
        inputs: Sequence[str],
        purpose: str = TRAINING_PURPOSE,
        data: Mapping[str, Any] | None = None,
        gate_callable: str = DEFAULT_GATE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)  # a refusal does not change on retry
        super().__init__(**kwargs)
        if not inputs:
            raise ValueError(f"ContractGateOperator `{kwargs.get('task_id')}`: name the datasets the gated job reads in `inputs`")
        self.job = job
        self.purpose = purpose
        self.inputs = list(inputs)
        self.data = dict(data or {})  # dataset id -> a path, or a DatasetSpec resolved at run time
        self.gate_callable = gate_callable
        self._summary: dict[str, Any] | None = None
        self._decision: Any = None

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            decision = self._decide()
        except Exception as exc:  # fail closed: not knowing is a refusal
            reason = f"the gate could not decide ({type(exc).__name__}: {exc}); training is blocked because the gate fails closed"
            self._record(False, [reason], reason)
            raise AirflowFailException(f"contract gate BLOCKED {self.job} for `{self.purpose}`: {reason}") from exc
        self._decision = decision
        allowed = getattr(decision, "allowed", False) is True
        text = _render(decision)
        self._record(allowed, _reasons(decision, text), text)
        if not allowed:
            raise AirflowFailException(text)
        self.log.info("contract gate allowed %s for `%s`:\n%s", self.job, self.purpose, text)
        return dict(self._summary or {})

    def _decide(self) -> Any:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
        from lineage.config import Settings

        settings = Settings()
        module, _, attr_name = self.gate_callable.rpartition(".")
        check_gate = getattr(importlib.import_module(module), attr_name)
        frames = _load_frames(self.data, settings.home)
        return check_gate(settings, job=self._qualified_job(), purpose=self.purpose, inputs=list(self.inputs), data=frames or None)

    def _qualified_job(self) -> str:
        """``NAMESPACE:NAME`` as the gate logs it; a bare name gets the provider's namespace."""
        if ":" in self.job:
            return self.job
        try:
            from airflow.providers.openlineage import conf

            return f"{conf.namespace()}:{self.job}"
        except Exception:
            return f"default:{self.job}"

    def _record(self, allowed: bool, reasons: list[str], text: str) -> None:
        self._summary = {
            "allowed": allowed,
            "job": self._qualified_job(),
            "purpose": self.purpose,
            "inputs": list(self.inputs),
            "decision_id": getattr(self._decision, "decision_id", None),
            "reasons": reasons,
            "decision": text,
        }
        DECISIONS[self.job] = dict(self._summary)

    # -- OpenLineage ---------------------------------------------------------------------------
    def _inputs(self) -> list[InputDataset]:
        facets: dict[str, dict] = {}
        if self._decision is not None:
            try:
                from lineage.gate.facets import input_facets

                facets = {k[len("dataset:"):]: v for k, v in input_facets(self._decision).items()}
            except Exception:  # facets are a courtesy; lineage never fails the task
                self.log.warning("could not build gate facets for OpenLineage", exc_info=True)
        out = []
        for dataset in dict.fromkeys([*self.inputs, *self.data]):
            try:
                node = parse_node_id(dataset, "inputs", kind="dataset")
            except LineageError:  # an input the gate could not read either: no lineage for it
                self.log.warning("input `%s` is not a dataset id; left out of OpenLineage", dataset)
                continue
            extra = facets.get(f"{node.namespace}:{node.name}", {})
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


def _load_frames(data: Mapping[str, Any], home: Path) -> dict[str, Any]:
    if not data:
        return {}
    import pandas as pd

    paths = {k: v.path(home) if hasattr(v, "path") else Path(v) for k, v in data.items()}
    return {dataset: pd.read_csv(path) for dataset, path in paths.items()}


def _render(decision: Any) -> str:
    render = getattr(decision, "render", None)
    if callable(render):
        return str(render())
    return str(decision)


def _reasons(decision: Any, text: str) -> list[str]:
    """The decision's reasons as strings, whatever shape the gate gives them in."""
    raw = getattr(decision, "reasons", None)
    if raw is not None:
        out = []
        for r in raw:
            if isinstance(r, str):
                out.append(r)
            elif getattr(r, "message", None):
                code = getattr(r, "code", None)
                out.append(f"[{code}] {r.message}" if code else str(r.message))
            else:
                out.append(str(r))
        return out
    return [line.strip(" -•") for line in text.splitlines() if line.strip(" -•")]
