"""``ContractGateOperator``: the contract gate, standing in front of every training task.

Put it upstream of the task that trains; the training task runs only if the gate succeeds::

    gate = ContractGateOperator(
        task_id="contract_gate",
        job="train_model__acme.train",          # the job being gated (dag_id.task_id)
        purpose="train_ai_system",              # a Fides data use
        sources=["partner-drops:acme/photos"],  # contracted source datasets
        data={"curated:acme/smile_training_set": "/lake/curated/acme/training_set.csv"},  # optional
    )
    gate >> train

It asks :func:`lineage.gate.service.check_gate` whether every source's contract permits the
purpose (and, given data, whether the data conforms), then:

* allowed — logs the decision and returns a summary (XCom) the training task puts in its
  model card;
* blocked — raises :class:`AirflowFailException` (no retries) whose message is the readable
  decision, and reports a FAIL event carrying a ``contractGate`` run facet with every reason;
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

from lineage.airflow.facets import PRODUCER, ContractGateRunFacet
from lineage.airflow.pipeline import TRAINING_PURPOSE

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
        sources: Sequence[str],
        purpose: str = TRAINING_PURPOSE,
        data: Mapping[str, Any] | None = None,
        gate_callable: str = DEFAULT_GATE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)  # a refusal does not change on retry
        super().__init__(**kwargs)
        if not sources:
            raise ValueError(f"ContractGateOperator `{kwargs.get('task_id')}`: name the contracted source datasets in `sources`")
        self.job = job
        self.purpose = purpose
        self.sources = list(sources)
        self.data = dict(data or {})  # dataset id -> a path, or a DatasetSpec resolved at run time
        self.gate_callable = gate_callable
        self._summary: dict[str, Any] | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            decision = self._decide()
        except Exception as exc:  # fail closed: not knowing is a refusal
            reason = f"the gate could not decide ({type(exc).__name__}: {exc}); training is blocked because the gate fails closed"
            self._record(False, [reason], reason)
            raise AirflowFailException(f"contract gate BLOCKED {self.job} for `{self.purpose}`: {reason}") from exc
        allowed = bool(getattr(decision, "allowed", False))
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
        return check_gate(settings, job=self.job, purpose=self.purpose, inputs=list(self.sources), data=frames or None)

    def _record(self, allowed: bool, reasons: list[str], text: str) -> None:
        self._summary = {
            "allowed": allowed,
            "job": self.job,
            "purpose": self.purpose,
            "sources": list(self.sources),
            "reasons": reasons,
            "decision": text,
        }
        DECISIONS[self.job] = dict(self._summary)

    # -- OpenLineage ---------------------------------------------------------------------------
    def _inputs(self) -> list[InputDataset]:
        ids = list(dict.fromkeys([*self.sources, *self.data]))
        return [InputDataset(namespace=ns, name=name) for ns, _, name in (i.partition(":") for i in ids)]

    def _run_facets(self) -> dict:
        if self._summary is None:
            return {}
        s = self._summary
        return {
            "contractGate": ContractGateRunFacet(
                allowed=s["allowed"], purpose=s["purpose"], inputs=s["sources"], reasons=s["reasons"], decision=s["decision"], producer=PRODUCER
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
    if raw:
        out = []
        for r in raw:
            if isinstance(r, str):
                out.append(r)
            else:
                out.append(str(getattr(r, "message", None) or getattr(r, "text", None) or r))
        return out
    return [line.strip(" -•") for line in text.splitlines() if line.strip(" -•")]
