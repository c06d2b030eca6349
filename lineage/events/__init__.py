"""Our own model of OpenLineage events: parse, validate, canonicalise, identify nodes."""

from lineage.events.model import ParsedEvent, DatasetRef, parse_event, parse_events, decode_body
from lineage.events.ids import NodeId, parse_node_id

__all__ = ["ParsedEvent", "DatasetRef", "parse_event", "parse_events", "decode_body", "NodeId", "parse_node_id"]
