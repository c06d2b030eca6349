"""The consent gate: may this training job read these inputs for this purpose?

``decision`` is the pure policy (``evaluate(...) -> Decision``); ``runner`` runs the compiled GX
suites on pandas frames and PostgreSQL tables; ``facets`` turns a decision into OpenLineage
facets; ``service.check_gate`` wires lineage, registry, GX and the decision log (``gate_decisions``) together and
fails closed; ``cli`` is ``lineage gate check``.
"""
