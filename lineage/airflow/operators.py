"""``LineageOperator``: a base for operators that report their own datasets to OpenLineage.

A plain ``@task`` reports no datasets, so an operator that moves data into or out of training
derives from :class:`LineageOperator`.  It declares what it reads and writes
(:class:`~lineage.airflow.datasets.DatasetSpec`: any namespace, any name, a path), records
what it saw while running (:meth:`LineageOperator.saw`), and answers the OpenLineage
provider's three hooks:

* ``get_openlineage_facets_on_start`` — declared inputs and outputs, with the facets known
  before running (dataSource, ownership, documentation, contract);
* ``get_openlineage_facets_on_complete`` — the same datasets with schema, datasetVersion and
  output statistics as observed;
* ``get_openlineage_facets_on_failure`` — inputs as observed, and only the outputs that were
  actually written before the failure.

Declare the datasets with ``reads=[...]``/``writes=[...]``, or override :meth:`reads` and
:meth:`writes` (they are called when the task runs, so paths can come from the worker's
configuration).  The provider calls the hooks on the operator instance that ran ``execute``,
so observations are kept on ``self``.  Nothing here knows any particular pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.sdk import BaseOperator

from lineage.airflow.datasets import DatasetSpec, Observation, input_dataset, observe_file, output_dataset


class LineageOperator(BaseOperator):
    """Base for operators that report their inputs and outputs as OpenLineage datasets."""

    ui_color = "#e8f0fe"

    def __init__(self, *, reads: Sequence[DatasetSpec] = (), writes: Sequence[DatasetSpec] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reads = list(reads)
        self._writes = list(writes)
        self._seen: dict[str, Observation] = {}

    # -- what the operator declares ----------------------------------------------------------
    def reads(self) -> list[DatasetSpec]:
        return list(self._reads)

    def writes(self) -> list[DatasetSpec]:
        return list(self._writes)

    # -- for execute ---------------------------------------------------------------------------
    def saw(self, spec: DatasetSpec, frame: Any = None) -> Observation:
        """Observe ``spec``'s file (content version, size; with ``frame``, columns and rows)."""
        seen = observe_file(spec.file(), frame)
        self._seen[spec.id] = seen
        return seen

    # -- the OpenLineage provider's hooks ----------------------------------------------------
    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return OperatorLineage(inputs=[input_dataset(s) for s in self.reads()], outputs=[output_dataset(s) for s in self.writes()])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        return OperatorLineage(
            inputs=[input_dataset(s, self._seen.get(s.id)) for s in self.reads()],
            outputs=[output_dataset(s, self._seen.get(s.id)) for s in self.writes()],
            run_facets=self.run_facets(),
        )

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return OperatorLineage(
            inputs=[input_dataset(s, self._seen.get(s.id)) for s in self.reads()],
            outputs=[output_dataset(s, self._seen[s.id]) for s in self.writes() if s.id in self._seen],
            run_facets=self.run_facets(),
        )

    def run_facets(self) -> dict:
        return {}
