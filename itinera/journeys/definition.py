"""A loaded, validated journey definition."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from itinera.errors import Location
from itinera.journeys.pointers import Positions


def document_hash(document: dict[str, Any]) -> str:
    """The SHA-256 (hex) of the canonical JSON of ``document``: keys sorted, no whitespace.

    It depends on content only, not on key order, comments, YAML or JSON formatting.
    """
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Definition:
    """A journey definition that parsed and passed every check.

    Two definitions are equal when their file, content hash and identity are; the document and
    its source text are not compared (the hash stands for them).

    Attributes:
        document: The definition as plain JSON values (dicts, lists, str, int, float, bool, None).
        source: The text it was loaded from.
        file: Where it came from (a path, or ``"<string>"``), as used in error messages.
        hash: :func:`document_hash` of ``document``.
        namespace: ``document.namespace``.
        name: ``document.name``.
        version: ``document.version``.
        positions: Where each node is written in ``source``; see :meth:`locate`.
    """

    document: dict[str, Any] = field(compare=False, repr=False)
    source: str = field(compare=False, repr=False)
    file: str
    hash: str
    namespace: str
    name: str
    version: str
    positions: Positions = field(default_factory=lambda: Positions({}), compare=False, repr=False)

    def locate(self, pointer: str) -> Location:
        """The line and column of the node at a JSON Pointer, such as ``"/do/1/notify/then"``.

        A mapping member is located at its key. If nothing is at ``pointer``, its nearest
        existing ancestor is located instead (``pointer`` is kept as given).

        Raises:
            ValueError: ``pointer`` is not a JSON Pointer (neither ``""`` nor starting with ``/``).
        """
        line, column = self.positions.find(pointer)
        return Location(file=self.file, line=line, column=column, pointer=pointer)
