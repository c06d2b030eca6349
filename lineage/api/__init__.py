"""The HTTP API: OpenLineage ingest, lineage queries and Marquez-compatible reads.

One router per resource; handlers call the store's functions and hold no SQL.
"""
