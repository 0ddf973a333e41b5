"""Reading definition text: YAML 1.2 and JSON, strictly, into plain JSON values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itinera.errors import DefinitionError
from itinera.journeys import MAX_SOURCE_BYTES, load_definition, load_file
from itinera.journeys.source import MAX_ALIAS_NODES, MAX_DEPTH

FIXTURES = Path(__file__).parent / "fixtures" / "journeys"
HEAD = "document:\n  dsl: '1.0.3'\n  namespace: acme\n  name: test\n  version: '1.0.0'\n"


def problems_of(text: str | bytes, **options: int) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, file="journey.yaml", **options)
    return [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]


def file_problems(name: str, **options: int) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_file(FIXTURES / name, **options)
    assert all(p.location.file == str(FIXTURES / name) for p in caught.value.problems)
    return [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]


def test_yaml_syntax_error_is_located_at_the_parser_mark() -> None:
    [(line, column, pointer, message)] = file_problems("invalid-yaml-syntax.yaml")

    assert (line, column, pointer) == (9, 9, "/do/0/greet/set")
    assert message.startswith("YAML syntax error: ")
    assert "flow mapping" in message


def test_duplicate_key_is_reported_at_the_second_occurrence() -> None:
    assert file_problems("invalid-duplicate-key.yaml") == [
        (10, 9, "/do/0/greet/set/message", "duplicate key 'message' (first at line 9); a key may appear only once")
    ]


def test_document_that_is_not_a_mapping_is_reported_at_1_1() -> None:
    assert file_problems("invalid-not-mapping.yaml") == [
        (1, 1, "", "a journey definition is a mapping with 'document' and 'do' at the top; got a list")
    ]


@pytest.mark.parametrize(
    ("text", "got"),
    [("", "an empty document"), ("# only a comment\n", "an empty document"), ("42\n", "an integer (42)"), ("hello\n", "'hello'")],
)
def test_empty_and_scalar_documents_are_not_definitions(text: str, got: str) -> None:
    assert problems_of(text) == [
        (1, 1, "", f"a journey definition is a mapping with 'document' and 'do' at the top; got {got}")
    ]


def test_oversized_source_is_refused_before_parsing() -> None:
    size = (FIXTURES / "invalid-oversized.yaml").stat().st_size

    [(line, column, pointer, message)] = file_problems("invalid-oversized.yaml", max_bytes=100)

    assert (line, column, pointer) == (1, 1, "")
    assert message.startswith(f"the definition is {size:,} bytes, over the limit of 100 bytes")
    load_file(FIXTURES / "invalid-oversized.yaml")  # fine under the default limit


def test_default_size_limit_is_one_mebibyte() -> None:
    filler = "# " + "x" * 76 + "\n"
    text = HEAD + "do:\n  - a:\n      set: {x: 1}\n"
    text += filler * ((MAX_SOURCE_BYTES - len(text)) // len(filler))
    text += "#" * (MAX_SOURCE_BYTES - len(text.encode()))

    assert MAX_SOURCE_BYTES == 1024 * 1024
    assert len(text.encode()) == MAX_SOURCE_BYTES
    load_definition(text)
    [(_, _, _, message)] = problems_of(text + "#")
    assert "over the limit of 1,048,576 bytes" in message


def test_yaml_values_outside_json_are_each_reported() -> None:
    assert file_problems("invalid-yaml-values.yaml") == [
        (9, 9, "/do/0/greet/set/200", "a mapping key must be a string, but '200' reads as an integer; quote it: '200'"),
        (10, 14, "/do/0/greet/set/big", "the integer 123456789012345678901234567890 is out of range; integers must fit in 64 bits"),
        (11, 16, "/do/0/greet/set/never", ".inf is not a JSON number; quote it if you mean the text"),
        (12, 14, "/do/0/greet/set/raw", "unsupported YAML tag 'tag:yaml.org,2002:binary'; only plain JSON values are allowed"),
        (13, 9, "/do/0/greet/set/<<", "YAML merge keys ('<<') are not supported; write the keys out"),
    ]


def test_scalars_resolve_by_the_yaml_1_2_core_schema() -> None:
    text = HEAD + (
        "do:\n  - a:\n      set:\n"
        "        on: yes\n        off: no\n        when: 2024-01-31\n        octal: 0o17\n        hex: 0x1F\n"
        "        decimal: 017\n        real: -1.5e3\n        t: true\n        n: ~\n        empty:\n"
        "        quoted: 'true'\n        tagged: !!str 12\n        forced: !!float 3\n"
    )

    values = load_definition(text).document["do"][0]["a"]["set"]

    assert values == {
        "on": "yes", "off": "no", "when": "2024-01-31", "octal": 15, "hex": 31, "decimal": 17,
        "real": -1500.0, "t": True, "n": None, "empty": None, "quoted": "true", "tagged": "12", "forced": 3.0,
    }


def test_schedule_on_is_a_key_not_a_boolean() -> None:
    text = HEAD + "schedule:\n  on:\n    one:\n      with:\n        type: com.acme.hired\ndo:\n  - a:\n      set: {x: 1}\n"

    assert load_definition(text).document["schedule"] == {"on": {"one": {"with": {"type": "com.acme.hired"}}}}


def test_aliases_expand_to_independent_copies() -> None:
    text = HEAD + "do:\n  - a:\n      set: &shared {x: [1, 2]}\n  - b:\n      set: *shared\n"

    definition = load_definition(text)
    first, second = definition.document["do"][0]["a"]["set"], definition.document["do"][1]["b"]["set"]

    assert first == second == {"x": [1, 2]}
    assert first is not second and first["x"] is not second["x"]
    assert (definition.locate("/do/1/b/set").line, definition.locate("/do/1/b/set/x/1").line) == (10, 8)


def test_alias_expansion_beyond_the_budget_is_refused() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index, name in enumerate("bcdef"):
        previous = "abcdef"[index]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    text = "\n".join(levels) + "\n"

    [(line, _, _, message)] = problems_of(text)

    assert line == 4
    assert f"more than {MAX_ALIAS_NODES:,} nodes" in message


def test_alias_inside_its_own_anchor_is_refused() -> None:
    [(_, _, pointer, message)] = problems_of("a: &loop [1, *loop]\n")

    assert pointer == "/a"
    assert message == "alias '*loop' refers to a node that contains it"


def test_unknown_alias_is_reported() -> None:
    assert problems_of(HEAD + "do: *tasks\n") == [
        (6, 1, "/do", "expected a list; got null"),  # validation goes on with null in its place
        (6, 5, "/do", "unknown alias '*tasks'; define '&tasks' before using it"),
    ]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    text = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"

    [(_, _, _, message)] = problems_of(text)

    assert message == f"the document nests deeper than {MAX_DEPTH} levels"


def test_a_second_yaml_document_is_refused() -> None:
    text = HEAD + "do:\n  - a:\n      set: {x: 1}\n---\nmore: stuff\n"

    assert problems_of(text) == [
        (9, 1, "", "a definition is a single YAML document; remove the second '---' and what follows, "
         "or put it in its own file")
    ]


def test_bytes_must_be_utf8_and_a_bom_is_ignored() -> None:
    text = HEAD + "do:\n  - a:\n      set: {greeting: héllo}\n"

    assert load_definition(b"\xef\xbb\xbf" + text.encode()).document["do"][0]["a"]["set"] == {"greeting": "héllo"}
    [(line, column, _, message)] = problems_of(text.encode().replace("é".encode(), b"\xe9"))
    assert (line, column) == (8, 24)
    assert message == "the file is not UTF-8 text (byte 0xe9)"


def test_control_characters_are_a_syntax_error() -> None:
    [(line, column, _, message)] = problems_of(HEAD + "do: \x07\n")

    assert (line, column) == (6, 5)
    assert message.startswith("YAML syntax error: control characters are not allowed")


def test_json_is_accepted_including_surrogate_pair_escapes() -> None:
    document = {
        "document": {"dsl": "1.0.3", "namespace": "acme", "name": "test", "version": "1.0.0"},
        "do": [{"greet": {"set": {"message": "hi \U0001f600", "path": "a/b"}}}],
    }
    text = json.dumps(document, indent="\t")  # ASCII-only: the emoji becomes \ud83d\ude00

    assert "\\ud83d\\ude00" in text
    assert load_definition(text).document == document
