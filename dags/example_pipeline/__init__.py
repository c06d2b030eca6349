"""The example ML pipeline (partners, zones, drops, its operators): the demo's, not a library.

The DAG files in ``dags/`` and :mod:`example_pipeline.demo` use it; :mod:`lineage.airflow` knows nothing of it.
"""
