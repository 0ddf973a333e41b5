"""Loading a journey definition: parse, validate against the DSL schema, check semantics."""

from __future__ import annotations

import os
from typing import Any

from itinera.journeys.definition import Definition, document_hash
from itinera.journeys.problems import Problems
from itinera.journeys.schema import schema_problems
from itinera.journeys.schema_errors import describe
from itinera.journeys.semantic import semantic_problems
from itinera.journeys.source import MAX_SOURCE_BYTES, parse_source, too_large


def load_definition(
    text: str | bytes, *, file: str = "<string>", max_bytes: int = MAX_SOURCE_BYTES
) -> Definition:
    """Parse and validate a journey definition written in the Serverless Workflow DSL 1.0.

    ``text`` is YAML or JSON (bytes must be UTF-8). The definition is checked against the DSL
    1.0.3 JSON Schema, then for what the schema cannot say: ``then`` and ``call`` targets,
    references to ``use`` entries, durations and runtime expressions.

    Args:
        text: The definition's source.
        file: The name to report problems under (a path, usually).
        max_bytes: The largest source accepted, in bytes of UTF-8.

    Raises:
        DefinitionError: with every problem found, each located by line, column and JSON Pointer.
    """
    parsed = parse_source(text, file=file, max_bytes=max_bytes)
    problems = Problems(file=file, positions=parsed.positions)
    problems.extend(parsed.problems)
    document: Any = parsed.value
    if not isinstance(document, dict):
        got = "an empty document" if document is None else describe(document)
        message = f"a journey definition is a mapping with 'document' and 'do' at the top; got {got}"
        problems.add("", message, at=(1, 1))
        problems.raise_if_any()
    conformance = schema_problems(document)
    for pointer, message in conformance:
        problems.add(pointer, message)
    if not conformance:
        for pointer, message in semantic_problems(document):
            problems.add(pointer, message)
    problems.raise_if_any()
    about = document["document"]
    return Definition(
        document=document,
        source=parsed.text,
        file=file,
        hash=document_hash(document),
        namespace=about["namespace"],
        name=about["name"],
        version=about["version"],
        positions=parsed.positions,
    )


def load_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_SOURCE_BYTES) -> Definition:
    """Load a definition from a file; problems name the file as ``path`` was given.

    Raises:
        DefinitionError: the definition is invalid (see :func:`load_definition`).
        OSError: the file cannot be read.
    """
    file = os.fspath(path)
    with open(file, "rb") as stream:
        data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large(os.fstat(stream.fileno()).st_size, max_bytes, file)
    return load_definition(data, file=file, max_bytes=max_bytes)

