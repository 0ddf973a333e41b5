"""Schema validation: one useful, located message per problem instead of ``oneOf`` soup."""

from __future__ import annotations

from pathlib import Path

import pytest

from itinera.errors import DefinitionError
from itinera.journeys import load_definition, load_file

FIXTURES = Path(__file__).parent / "fixtures" / "journeys"
HEAD = "document:\n  dsl: '1.0.3'\n  namespace: acme\n  name: test\n  version: '1.0.0'\n"
KINDS = "'call', 'do', 'emit', 'for', 'fork', 'listen', 'raise', 'run', 'set', 'switch', 'try' or 'wait'"


def problems_of(body: str, head: str = HEAD) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(head + body, file="journey.yaml")
    return [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]


def test_every_schema_problem_of_a_file_is_reported_in_line_order() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_file(FIXTURES / "invalid-schema.yaml")
    found = [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]

    assert found == [
        (10, 7, "/use/functions/broken/with", "missing required property 'endpoint'"),
        (13, 5, "/do/0/nothing", f"task 'nothing' does not say what to do: expected one of {KINDS}"),
        (15, 5, "/do/1/both", "task 'both' has several kinds ('set' and 'wait'); a task does one thing, "
         "so split it into one task per kind"),
        (19, 5, "/do/2/typo", "missing required property 'with'"),
        (21, 7, "/do/2/typo/wiht", "unexpected property 'wiht'; did you mean 'with'?"),
        (27, 9, "/do/3/badEndpoint/with/endpoint", "expected an endpoint: an absolute URI such as "
         "'https://api.example.com/pets/{id}', a runtime expression '${ ... }', or a mapping with 'uri'; "
         "got 'not a uri'"),
        (29, 7, "/do/4/badWait/wait", "expected a duration: ISO 8601 text such as 'PT30S' or 'P1DT2H', a mapping "
         "of days, hours, minutes, seconds and milliseconds, or a runtime expression '${ ... }'; got '5 minutes'"),
        (31, 7, "/do/5/process/run", "missing one of 'container', 'script', 'shell' or 'workflow'"),
        (47, 25, "/do/6/deep/fork/branches/0/left/try/0/inner/with/service/port",
         "expected a value of at most 65535; got an integer (99999)"),
        (54, 27, "/do/6/deep/fork/branches/0/left/catch/do/0/recover/emit/event/with",
         "missing required property 'source'"),
    ]
    assert str(caught.value).splitlines()[0] == (
        f"{FIXTURES / 'invalid-schema.yaml'}:10:7: /use/functions/broken/with: missing required property 'endpoint'"
    )


def test_misspelled_kind_key_gets_a_suggestion() -> None:
    assert problems_of("do:\n  - a:\n      cal: http\n") == [
        (7, 5, "/do/0/a", f"task 'a' does not say what to do: expected one of {KINDS}; did you mean 'call'?")
    ]


def test_task_that_is_not_a_mapping() -> None:
    assert problems_of("do:\n  - a: 5\n") == [
        (7, 5, "/do/0/a", f"task 'a' must be a mapping with one of {KINDS}; got an integer (5)")
    ]


def test_task_list_item_that_is_not_a_mapping() -> None:
    assert problems_of("do:\n  - just a string\n") == [
        (7, 5, "/do/0", "a task list item maps a task's name to the task (like '- greet: ...'); got 'just a string'")
    ]


def test_call_is_checked_against_the_alternative_its_value_names() -> None:
    body = "do:\n  - ask:\n      call: a2a\n      with:\n        method: message/shout\n"

    [(line, column, pointer, message)] = problems_of(body)

    assert (line, column, pointer) == (10, 9, "/do/0/ask/with/method")
    assert message.startswith("expected one of 'message/send', 'message/stream'")
    assert message.endswith("; got 'message/shout'")


def test_required_properties_and_types_deep_in_a_task() -> None:
    body = "do:\n  - a:\n      listen:\n        to:\n          one:\n            with: {}\n      then: 5\n"

    assert problems_of(body) == [
        (11, 13, "/do/0/a/listen/to/one/with", "expected at least 1 property; got an empty mapping"),
        (12, 7, "/do/0/a/then", "expected a string; got an integer (5)"),
    ]


def test_property_of_another_form_is_not_allowed_here() -> None:
    body = "do:\n  - a:\n      listen:\n        to:\n          all: []\n          until: ${ true }\n"

    assert problems_of(body) == [(11, 11, "/do/0/a/listen/to/until", "property 'until' is not allowed here")]


def test_conditional_property_of_a_container_lifetime() -> None:
    body = (
        "do:\n  - a:\n      run:\n        container:\n          image: alpine\n"
        "          lifetime:\n            cleanup: always\n            after: PT1M\n"
    )

    assert problems_of(body) == [(13, 13, "/do/0/a/run/container/lifetime/after", "property 'after' is not allowed here")]


def test_document_block_patterns_have_plain_messages() -> None:
    head = "document:\n  dsl: '1.0'\n  namespace: acme corp\n  name: test\n  version: '1.0.0'\n  author: me\n"

    assert problems_of("do:\n  - a:\n      set: {x: 1}\n", head=head) == [
        (2, 3, "/document/dsl", "expected a semantic version such as '1.0.3'; got '1.0'"),
        (3, 3, "/document/namespace",
         "expected letters, digits and '-' (at most 63, not starting or ending with '-'); got 'acme corp'"),
        (6, 3, "/document/author", "unexpected property 'author'"),
    ]


def test_missing_top_level_properties_are_reported_at_the_start() -> None:
    assert problems_of("", head="document:\n  dsl: '1.0.3'\n") == [
        (1, 1, "", "missing required property 'do'"),
        (1, 1, "/document", "missing required property 'name'"),
        (1, 1, "/document", "missing required property 'namespace'"),
        (1, 1, "/document", "missing required property 'version'"),
    ]


def test_tasks_nested_twenty_levels_deep_load() -> None:
    # Validating nested oneOf under unevaluatedProperties in one pass is exponential in depth;
    # this only finishes because tasks are validated one by one.
    text, indent = "do:\n", "  "
    for level in range(19):
        text += f"{indent}- level{level}:\n{indent}    do:\n"
        indent += "      "
    text += f"{indent}- leaf:\n{indent}    set: {{done: true}}\n"

    definition = load_definition(HEAD + text)

    assert definition.locate("/do/0/level0/do/0/level1/do/0/level2").line == 11


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "do:\n  - a:\n      run:\n        container: {image: alpine}\n        shell: {command: ls}\n",
            (8, 7, "/do/0/a/run", "'container' and 'shell' exclude each other; keep only one"),
        ),
        (
            "do:\n  - a:\n      call: asyncapi\n      with:\n        document:\n"
            "          endpoint: https://example.com/api.yaml\n        operation: send\n",
            (9, 7, "/do/0/a/with", "missing one of 'message' or 'subscription'"),
        ),
        ("do:\n  - a:\n      set: 5\n", (8, 7, "/do/0/a/set", "expected a mapping or a string; got an integer (5)")),
        (
            "schedule:\n  on:\n    one:\n      with: {type: a}\n    bogus: 1\ndo:\n  - a: {set: {x: 1}}\n",
            (10, 5, "/schedule/on/bogus", "unexpected property 'bogus'"),
        ),
    ],
)
def test_alternatives_are_explained_by_the_shape_of_the_value(body: str, expected: tuple[int, int, str, str]) -> None:
    assert problems_of(body) == [expected]


def test_http_query_values_may_be_any_json_value_as_the_prose_says() -> None:
    # dsl-reference, HTTP Call: `query` is map[string, any]; the schema only allows strings.
    body = (
        "do:\n  - find:\n      call: http\n      with:\n        method: get\n"
        "        endpoint: https://api.example.com/pets\n        query: {limit: 2, exact: true, tags: [a, b]}\n"
    )

    query = load_definition(HEAD + body).document["do"][0]["find"]["with"]["query"]

    assert query == {"limit": 2, "exact": True, "tags": ["a", "b"]}


def test_a_string_of_the_wrong_shape_is_told_the_shapes_it_may_take() -> None:
    import pytest

    from itinera.errors import DefinitionError
    from itinera.journeys import load_definition

    text = "document: {dsl: '1.0.3', namespace: t, name: a, version: '1.0.0'}\ndo:\n  - e:\n      emit:\n        event:\n          with: {source: x, type: t}\n"
    with pytest.raises(DefinitionError) as info:
        load_definition(text, file="emit.yaml")
    assert str(info.value) == (
        "emit.yaml:6:18: /do/0/e/emit/event/with/source: expected an absolute URI such as "
        "'https://example.com/events' or a runtime expression '${ ... }'; got 'x'"
    )
