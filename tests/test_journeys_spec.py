"""The DSL 1.0.3 specification's own examples and invalid fixtures, and the schema we ship."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from itinera.errors import DefinitionError
from itinera.journeys import Definition, load_file
from itinera.journeys.schema import workflow_schema
from itinera.journeys.source import parse_source

SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "serverless-workflow-1.0.3"
needs_spec = pytest.mark.skipif(not SPEC.is_dir(), reason=f"the DSL 1.0.3 specification is not at {SPEC}")
EXAMPLES = sorted((SPEC / "examples").glob("*.yaml")) if SPEC.is_dir() else []


def problems(path: Path) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_file(path)
    return [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]


@needs_spec
def test_all_66_examples_are_found() -> None:
    assert len(EXAMPLES) == 66


@needs_spec
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_spec_example_loads(path: Path) -> None:
    definition = load_file(path)

    assert isinstance(definition, Definition)
    assert definition.file == str(path)
    assert definition.name == definition.document["document"]["name"]


@needs_spec
def test_extra_property_in_a_call_is_reported_at_the_property() -> None:
    found = problems(SPEC / "invalid" / "extra-property-in-call.yaml")

    assert found == [(12, 7, "/do/0/getPet/foo", "unexpected property 'foo'")]


@needs_spec
def test_two_tasks_in_one_list_item_points_at_the_second_task() -> None:
    found = problems(SPEC / "invalid" / "two-tasks-in-one-item.yaml")

    assert len(found) == 1
    line, column, pointer, message = found[0]
    assert (line, column, pointer) == (12, 5, "/do/0/setMessage")
    assert "'setMessage' shares a list item with 'getPet'" in message
    assert "own line with '- '" in message


@needs_spec
def test_until_nested_in_until_is_reported_with_the_duplicate_do_key() -> None:
    found = problems(SPEC / "invalid" / "listen-any-until-any-until.yaml")

    assert found == [
        (7, 1, "/do", "duplicate key 'do' (first at line 6); a key may appear only once"),
        (14, 13, "/do/0/callDoctor/listen/to/until/until", "property 'until' is not allowed here"),
    ]


@needs_spec
def test_shipped_schema_is_the_specification_schema() -> None:
    text = (SPEC / "workflow.schema.yaml").read_text(encoding="utf-8")

    assert workflow_schema() == parse_source(text).value
    Draft202012Validator.check_schema(workflow_schema())


def _refs(node: Any, target: str, pointer: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("$ref") == target:
            found.add(pointer)
        for key, value in node.items():
            found |= _refs(value, target, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found |= _refs(value, target, f"{pointer}/{index}")
    return found


def test_task_lists_are_where_the_task_walk_looks_for_them() -> None:
    # itinera.journeys.tasks hard-codes where tasks nest; this pins that to the schema.
    schema = workflow_schema()
    defs = "/$defs"

    assert _refs(schema, "#/$defs/taskList") == {
        "/properties/do",
        f"{defs}/doTask/allOf/1/properties/do",
        f"{defs}/forTask/allOf/1/properties/do",
        f"{defs}/forkTask/allOf/1/properties/fork/properties/branches",
        f"{defs}/tryTask/allOf/1/properties/try",
        f"{defs}/tryTask/allOf/1/properties/catch/properties/do",
        f"{defs}/extension/properties/before",
        f"{defs}/extension/properties/after",
        f"{defs}/subscriptionIterator/properties/do",
    }
    assert _refs(schema, "#/$defs/task") == {
        "/properties/use/properties/functions/additionalProperties",
        f"{defs}/taskList/items/additionalProperties",
    }
    assert _refs(schema, "#/$defs/subscriptionIterator") == {
        f"{defs}/listenTask/allOf/1/properties/foreach",
        f"{defs}/asyncApiSubscription/properties/foreach",
    }
