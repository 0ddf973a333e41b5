"""CloudEvents: validation of the envelope at ingest."""

from itinera.events.cloudevent import validate_event

__all__ = ["validate_event"]
