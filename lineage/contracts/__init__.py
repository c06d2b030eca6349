"""Source contracts: ODCS v3 documents with governance terms, checked against the Fides taxonomy,
kept in an append-only registry, and compiled to Great Expectations suites.

Modules: ``taxonomy`` (keys and hierarchy), ``terms`` (the governance terms as values),
``document`` (YAML → validated contract), ``registry`` (PostgreSQL), ``compile`` (GX suites),
``cli`` (``lineage contracts ...``).
"""
