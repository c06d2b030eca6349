"""Our own model of OpenLineage events: parse, validate, canonicalise, identify nodes."""

from lineage.events.model import MAX_NAME_BYTES, ParsedEvent, DatasetRef, decode_body, parse_event, parse_events, parse_raw
from lineage.events.ids import NodeId, parse_node_id

__all__ = ["MAX_NAME_BYTES", "ParsedEvent", "DatasetRef", "parse_event", "parse_events", "parse_raw", "decode_body", "NodeId", "parse_node_id"]
