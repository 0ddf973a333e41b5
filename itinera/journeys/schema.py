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

The validators are built once per process.
"""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources
from typing import Any

import orjson
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs installed

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
        self.facts = SchemaFacts(shallow)
        self.document = Draft202012Validator(shallow)
        defs = shallow["$defs"]
        self.kinds = {
            kind: self.document.evolve(schema=defs[f"{kind}Task"]) for kind in TASK_KINDS if kind != "call"
        }
        self.calls: dict[str | None, Draft202012Validator] = {}
        for branch in defs["callTask"]["oneOf"]:
            target = branch["allOf"][1]["properties"]["call"].get("const")  # None: a custom function
            self.calls[target] = self.document.evolve(schema=branch)

    def check(self, document: Any) -> list[tuple[str, str]]:
        found = Explainer(self.facts, self.document, document).explain(list(self.document.iter_errors(document)))
        if isinstance(document, dict):
            for site in tasks(document):
                found.extend(self.check_task(site, document))
        return found

    def check_task(self, site: TaskSite, document: Any) -> list[tuple[str, str]]:
        body, name = site.body, site.name
        if not isinstance(body, dict):
            return [(site.pointer, f"task '{name}' must be a mapping with one of {quoted(TASK_KINDS)}; got {describe(body)}")]
        kinds = task_kinds(body)
        if not kinds:
            return [(site.pointer, f"task '{name}' does not say what to do: expected one of {quoted(TASK_KINDS)}{_guess(body)}")]
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
                return [(site.pointer + "/call", f"expected the name of a function to call; got {describe(target)}")]
            validator = self.calls.get(target, self.calls[None])
        else:
            validator = self.kinds[kinds[0]]
        errors = list(validator.iter_errors(body))
        if not errors:
            return []
        return Explainer(self.facts, self.document, document, base=site.pointer).explain(errors)


def _guess(body: dict[str, Any]) -> str:
    guesses = {match for key in body for match in difflib.get_close_matches(key, TASK_KINDS, n=1, cutoff=0.7)}
    return f"; did you mean {quoted(sorted(guesses))}?" if guesses else ""


@functools.cache
def _checker() -> _Checker:
    return _Checker()
