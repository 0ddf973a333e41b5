"""Journey definitions: load Serverless Workflow DSL 1.0 documents and validate them.

Every problem is reported at once, located by file, line, column and JSON Pointer::

    journey.yaml:12:9: /do/2/notify/then: unknown task 'sendMail'; expected 'continue', 'exit',
    'end' or one of the tasks in this list: welcome, wait
"""

from __future__ import annotations

from itinera.journeys.definition import Definition, document_hash
from itinera.journeys.durations import parse_duration
from itinera.journeys.loader import load_definition, load_file
from itinera.journeys.source import MAX_SOURCE_BYTES

__all__ = [
    "MAX_SOURCE_BYTES",
    "Definition",
    "document_hash",
    "load_definition",
    "load_file",
    "parse_duration",
]
