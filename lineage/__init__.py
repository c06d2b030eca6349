"""lineage: an OpenLineage event store with source contracts and a consent gate for ML training.

The package is laid out by what the system does: ``events`` (the OpenLineage model),
``store`` (PostgreSQL), ``contracts`` and ``gate`` (consent), ``api`` (HTTP), ``airflow``
(operators) and ``cli``.  Importing the package itself is cheap; heavy dependencies
(Great Expectations, Airflow) are imported only where they are used.
"""

__version__ = "0.1.0"

# The one producer URL for everything this package emits (events and facets), as OpenLineage
# asks: a URI naming the producing software and its version.
PRODUCER = f"https://github.com/lineage-ml/lineage/tree/{__version__}"
