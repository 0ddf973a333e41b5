"""Validation against the Serverless Workflow DSL 1.0.3 JSON Schema.

``workflow.schema.json`` beside this module is the DSL 1.0.3 workflow schema from the
Serverless Workflow project (serverlessworkflow/specification, tag v1.0.3, ``schema/workflow.yaml``),
Apache License 2.0, converted from YAML to JSON without other change.

Validating a whole definition against it in one go costs time exponential in the nesting of
tasks: every task is a ``oneOf`` of twelve kinds under ``unevaluatedProperties``, which
jsonschema re-validates at each level (a journey nested five tasks deep took seconds). So the
check runs in two steps that together say exactly what the schema says:

1. the definition against the schema with task lists and ``use.functions`` shallow (their items'
   own rules kept, the tasks in them left out);
2. each task, found by :mod:`itinera.journeys.tasks`, against the one alternative its kind key
   selects (for ``call``, its value) -- the only one of the ``oneOf`` it could match.

Where the prose reference and the schema disagree, the prose wins (as the specification's own
notes ask); each such change to the schema is made in :func:`_follow_the_prose`:

* HTTP call ``with.query`` values may be any JSON value (prose: ``map[string, any]``; schema:
  strings only).

The validators are built once per process.
"""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from itinera.journeys.schema_errors import Explainer, SchemaFacts, describe, quoted
from itinera.journeys.tasks import TASK_KINDS, TaskSite, task_kinds, tasks

SCHEMA_FILE = "workflow.schema.json"


@functools.cache
def workflow_schema() -> dict[str, Any]:
    """The pinned DSL 1.0.3 workflow schema, as parsed JSON (shared: do not modify it)."""
    data = resources.files(__package__).joinpath(SCHEMA_FILE).read_bytes()
    schema: dict[str, Any] = orjson.loads(data)
    return schema


def schema_problems(document: Any) -> list[tuple[str, str]]:
    """Check ``document`` against the DSL schema: ``(pointer, message)`` pairs, none if it conforms."""
    return _checker().check(document)


class _Checker:
    def __init__(self) -> None:
        shallow = copy.deepcopy(workflow_schema())
        shallow["$defs"]["taskList"]["items"]["additionalProperties"] = True
        shallow["properties"]["use"]["properties"]["functions"]["additionalProperties"] = True
        _follow_the_prose(shallow)
        self.facts = SchemaFacts(shallow)
        self.document: Validator = Draft202012Validator(shallow)
        defs = shallow["$defs"]
        self.kinds = {
            kind: self.document.evolve(schema=defs[f"{kind}Task"]) for kind in TASK_KINDS if kind != "call"
        }
        self.calls: dict[str | None, Validator] = {}
        for branch in defs["callTask"]["oneOf"]:
            target = branch["allOf"][1]["properties"]["call"].get("const")  # None: a custom function
            self.calls[target] = self.document.evolve(schema=branch)

    def check(self, document: Any) -> list[tuple[str, str]]:
        errors = list(self.document.iter_errors(document))
        found = Explainer(self.facts, self.document, document).explain(errors)
        if isinstance(document, dict):
            for site in tasks(document):
                found.extend(self.check_task(site, document))
        return found

    def check_task(self, site: TaskSite, document: Any) -> list[tuple[str, str]]:
        body, name = site.body, site.name
        if not isinstance(body, dict):
            expected = f"must be a mapping with one of {quoted(TASK_KINDS)}"
            return [(site.pointer, f"task '{name}' {expected}; got {describe(body)}")]
        kinds = task_kinds(body)
        if not kinds:
            expected = f"expected one of {quoted(TASK_KINDS)}{_guess(body)}"
            return [(site.pointer, f"task '{name}' does not say what to do: {expected}")]
        if len(kinds) > 1:
            return [
                (
                    site.pointer,
                    f"task '{name}' has several kinds ({quoted(kinds, 'and')}); a task does one thing, "
                    "so split it into one task per kind",
                )
            ]
        if kinds[0] == "call":
            target = body["call"]
            if not isinstance(target, str):
                message = f"expected the name of a function to call; got {describe(target)}"
                return [(site.pointer + "/call", message)]
            validator = self.calls.get(target, self.calls[None])
        else:
            validator = self.kinds[kinds[0]]
        errors = list(validator.iter_errors(body))
        if not errors:
            return []
        return Explainer(self.facts, self.document, document, base=site.pointer).explain(errors)


def _follow_the_prose(schema: dict[str, Any]) -> None:
    """Relax the schema where the DSL reference (the prose) allows more than it does."""
    for branch in schema["$defs"]["callTask"]["oneOf"]:
        arguments = branch["allOf"][1]["properties"]
        if arguments["call"].get("const") == "http":
            query = arguments["with"]["properties"]["query"]["oneOf"][0]
            query["additionalProperties"] = True  # dsl-reference, HTTP Call: query is map[string, any]


def _guess(body: dict[str, Any]) -> str:
    guesses = {match for key in body for match in difflib.get_close_matches(key, TASK_KINDS, n=1, cutoff=0.7)}
    return f"; did you mean {quoted(sorted(guesses))}?" if guesses else ""


@functools.cache
def _checker() -> _Checker:
    return _Checker()
