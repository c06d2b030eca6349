"""Airflow integration: operators that report their own lineage, the contract gate, a transport.

Everything here plugs into Airflow's official OpenLineage provider rather than around it:

* :mod:`lineage.airflow.operators` — the pipeline's operators (transfer a partner drop, curate a
  training set, train a model).  Each implements ``get_openlineage_facets_on_start/complete/
  failure`` and reports its inputs and outputs with schema, dataSource, datasetVersion,
  ownership and contract facets, so a DAG author never writes lineage by hand.
* :mod:`lineage.airflow.gate` — :class:`ContractGateOperator`, which stands in front of every
  training task and fails closed.
* :mod:`lineage.airflow.transport` — an OpenLineage transport that POSTs to ``lineage serve``
  and spools to ``LINEAGE_HOME/spool`` whenever that fails, so emission never fails a task and
  no event is lost (``lineage ingest`` replays the spool).
* :mod:`lineage.airflow.runner` — the environment that points Airflow at all of the above, and
  an in-process ``dag.test()`` runner used by the demo, the tests and the benchmark.

Nothing in this package imports Airflow at package import time; DAG files import only the
modules they need, and heavy libraries (scikit-learn, Great Expectations) load inside tasks.
"""
