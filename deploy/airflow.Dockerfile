# The official Airflow image with this package installed: the spooling OpenLineage transport,
# the gate operator and `lineage spool replay`. Used by deploy/airflow-values-*.yaml.
# Build from the repository root, after building the wheel:
#
#   pip wheel --no-deps -w dist .
#   docker build -f deploy/airflow.Dockerfile -t registry.example.com/ml-platform/airflow-lineage:3.3.2-lineage-0.1.0 .
#
# Airflow is pinned in the same install so that pip cannot move it (the chart's airflowVersion
# must match). Nothing secret goes in: tokens arrive as Kubernetes Secrets at run time.
FROM apache/airflow:3.3.2-python3.11
COPY dist/lineage-0.1.0-py3-none-any.whl /tmp/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" "/tmp/lineage-0.1.0-py3-none-any.whl[airflow]"
