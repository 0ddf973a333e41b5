"""The Definition a load returns: identity, content hash and source positions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import itinera.journeys
from itinera.errors import Location
from itinera.journeys import Definition, document_hash, load_definition, load_file

FIXTURES = Path(__file__).parent / "fixtures" / "journeys"

YAML = """\
# A comment before the document.
document:
  dsl: '1.0.3'
  namespace: acme
  name: welcome-flow
  version: '2.1.0'
do:
  - welcome:
      call: http
      with:
        method: post
        endpoint: https://mail.example.com/send
        body: {to: "${ .email }", tags: [new, vip]}
  - "a/b~c":
      wait: PT1H
      then: welcome
"""


def test_public_surface_is_pinned() -> None:
    assert sorted(itinera.journeys.__all__) == sorted(
        ["MAX_SOURCE_BYTES", "Definition", "document_hash", "load_definition", "load_file", "parse_duration"]
    )


def test_definition_fields() -> None:
    definition = load_definition(YAML, file="flows/welcome.yaml")

    assert (definition.namespace, definition.name, definition.version) == ("acme", "welcome-flow", "2.1.0")
    assert definition.file == "flows/welcome.yaml"
    assert definition.source == YAML
    assert definition.document["do"][1]["a/b~c"] == {"wait": "PT1H", "then": "welcome"}
    assert definition.hash == document_hash(definition.document)
    assert len(definition.hash) == 64


@pytest.mark.parametrize(
    ("pointer", "line", "column"),
    [
        ("", 2, 1),  # the first node, after the comment
        ("/document", 2, 1),
        ("/document/name", 5, 3),
        ("/do", 7, 1),
        ("/do/0", 8, 5),  # a list item: where the item starts
        ("/do/0/welcome", 8, 5),  # a mapping member: at its key
        ("/do/0/welcome/with/endpoint", 12, 9),
        ("/do/0/welcome/with/body/to", 13, 16),
        ("/do/0/welcome/with/body/tags/1", 13, 47),
        ("/do/1/a~1b~0c/then", 16, 7),  # escaped tokens
    ],
)
def test_locate_finds_the_node(pointer: str, line: int, column: int) -> None:
    definition = load_definition(YAML, file="welcome.yaml")

    assert definition.locate(pointer) == Location(file="welcome.yaml", line=line, column=column, pointer=pointer)


def test_locate_falls_back_to_the_nearest_existing_ancestor() -> None:
    definition = load_definition(YAML)

    assert definition.locate("/do/0/welcome/with/headers/accept") == Location(
        file="<string>", line=10, column=7, pointer="/do/0/welcome/with/headers/accept"
    )
    assert definition.locate("/nothing/here").line == 2
    assert definition.locate("/do/9").line == 7


def test_locate_rejects_what_is_not_a_pointer() -> None:
    with pytest.raises(ValueError, match="invalid JSON Pointer 'do/0'"):
        load_definition(YAML).locate("do/0")


def test_hash_depends_on_content_only() -> None:
    from_yaml = load_definition(YAML)
    reordered = json.dumps({"do": from_yaml.document["do"], "document": dict(reversed(from_yaml.document["document"].items()))})
    from_json = load_definition(reordered)
    changed = load_definition(YAML.replace("PT1H", "PT2H"))

    assert from_json.hash == from_yaml.hash
    assert from_json.document == from_yaml.document
    assert changed.hash != from_yaml.hash
    assert from_yaml.hash == document_hash(json.loads(json.dumps(from_yaml.document, sort_keys=True)))


def test_equal_definitions_compare_and_hash_alike() -> None:
    first, second = load_definition(YAML), load_definition(YAML + "# trailing comment\n")

    assert first == second
    assert len({first, second}) == 1
    assert first != load_definition(YAML, file="other.yaml")


def test_load_file_reports_the_path_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parent.parent)
    relative = os.path.join("fixtures", "journeys", "valid-onboarding.yaml")

    definition = load_file(relative)

    assert definition.file == relative
    assert definition.locate("/do/0/profile").file == relative
    assert load_file(Path(relative)).file == relative


def test_document_holds_plain_json_types_only() -> None:
    definition = load_file(FIXTURES / "valid-onboarding.yaml")
    stack: list[object] = [definition.document]
    while stack:
        node = stack.pop()
        assert type(node) in (dict, list, str, int, float, bool, type(None))
        if isinstance(node, dict):
            assert all(type(key) is str for key in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def test_definition_is_frozen() -> None:
    definition = load_definition(YAML)

    with pytest.raises(AttributeError):
        definition.name = "other"  # type: ignore[misc]
    assert isinstance(definition, Definition)
