"""Airflow integration any team can use: operators that report their own lineage, the gate, a transport.

Everything here plugs into Airflow's official OpenLineage provider rather than around it, and
knows nothing of any particular pipeline (the example's partners and zones live in
``dags/example_pipeline``):

* :mod:`lineage.airflow.operators` — :class:`LineageOperator`, a base whose subclasses declare
  the datasets they read and write (:class:`~lineage.airflow.datasets.DatasetSpec`: any
  namespace, explicit paths) and report them with schema, dataSource, datasetVersion,
  ownership and contract facets, so a DAG author never writes lineage by hand.
* :mod:`lineage.airflow.gate` — :class:`ContractGateOperator`, which stands in front of every
  training task, asks the lineage server over HTTP (:mod:`lineage.airflow.gate_client`), runs
  the data checks where the data is, and fails closed.
* :mod:`lineage.airflow.transport` — an OpenLineage transport that writes every event to a
  spool (:mod:`lineage.airflow.spool`) before POSTing it to ``lineage serve`` and replays what
  is pending, so emission never fails a task and no event is lost; ``lineage spool status`` /
  ``replay`` (:mod:`lineage.airflow.spool_cli`).
* :mod:`lineage.airflow.runner` — the environment that points Airflow at all of the above, and
  an in-process ``dag.test()`` runner used by the demo, the tests and the benchmark.

Nothing in this package imports Airflow at package import time; DAG files import only the
modules they need, and heavy libraries (scikit-learn, Great Expectations) load inside tasks.
"""
