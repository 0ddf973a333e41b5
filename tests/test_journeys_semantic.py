"""Checks beyond the schema: flow and call targets, references, durations, expressions."""

from __future__ import annotations

from pathlib import Path

import pytest

from itinera.errors import DefinitionError
from itinera.journeys import load_definition, load_file
from itinera.journeys import expression_syntax

FIXTURES = Path(__file__).parent / "fixtures" / "journeys"
HEAD = "document:\n  dsl: '1.0.3'\n  namespace: acme\n  name: test\n  version: '1.0.0'\n"


def file_problems(name: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_file(FIXTURES / name)
    return [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]


def problems_of(body: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(HEAD + body)
    return [(p.location.line, p.location.column, p.location.pointer, p.message) for p in caught.value.problems]


def test_a_journey_using_every_checked_feature_loads() -> None:
    definition = load_file(FIXTURES / "valid-onboarding.yaml")

    assert (definition.namespace, definition.name, definition.version) == ("acme", "employee-onboarding", "1.2.0")


def test_then_must_name_a_task_of_the_same_list() -> None:
    in_list = "expected 'continue', 'exit', 'end' or one of the tasks in this list:"

    assert file_problems("invalid-then.yaml") == [
        (15, 7, "/do/2/notify/then", f"unknown task 'sendMail'; {in_list} welcome, wait, notify, route, nested"),
        (20, 13, "/do/3/route/switch/0/vip/then", f"unknown task 'concierge'; {in_list} welcome, wait, notify, route, nested"),
        (28, 13, "/do/4/nested/do/0/inner/then", f"unknown task 'welcome'; {in_list} inner"),
    ]


def test_then_in_a_function_can_only_be_a_directive() -> None:
    body = "use:\n  functions:\n    f:\n      set: {x: 1}\n      then: g\ndo:\n  - a:\n      call: f\n"

    assert problems_of(body) == [
        (10, 7, "/use/functions/f/then",
         "unknown task 'g'; a function is not in a task list, so expected 'continue', 'exit' or 'end'")
    ]


def test_call_targets() -> None:
    assert file_problems("invalid-call.yaml") == [
        (19, 7, "/do/1/unknown/call", "unknown function 'sendMail'; expected http, grpc, openapi, asyncapi, a2a, mcp, "
         "a function under use.functions (declared: greet), or a catalog function 'name:version@catalog'"),
        (25, 7, "/do/4/fromUnknownCatalog/call", "unknown catalog 'elsewhere' in 'log:1.0.0@elsewhere'; declare it under "
         "use.catalogs (declared: shared) or use the built-in catalog 'itinera'"),
        (27, 7, "/do/5/malformed/call", "malformed catalog function 'log@shared'; expected 'name:version@catalog'"),
    ]


def test_itinera_catalog_needs_no_declaration() -> None:
    load_definition(HEAD + "do:\n  - mail:\n      call: send-email:1.0.0@itinera\n      with: {to: a@example.com}\n")


def test_durations_parse_wherever_the_schema_expects_one() -> None:
    assert file_problems("invalid-durations.yaml") == [
        (9, 7, "/use/timeouts/monthly/after",
         "invalid duration 'P1M': months have no fixed length; use weeks or days instead (for example 'P30D')"),
        (12, 7, "/use/retries/odd/delay",
         "invalid duration 'PT1.5H30M': only the last component may have a fraction, not the hours"),
        (14, 3, "/timeout/after", "duration minutes must be a non-negative integer; got -5"),
        (17, 3, "/schedule/every",
         "invalid duration 'P1Y': years have no fixed length; use weeks or days instead (for example 'P30D')"),
    ]


def test_named_references_must_be_declared_under_use() -> None:
    assert file_problems("invalid-references.yaml") == [
        (20, 9, "/use/authentications/api/basic/use", "unknown secret 'apiSecret': nothing is declared under use.secrets"),
        (21, 1, "/timeout", "unknown timeout 'forever'; expected one of those declared under use.timeouts: short"),
        (25, 9, "/do/0/fail/raise/error", "unknown error 'notAllowed'; expected one of those declared under use.errors: notFound"),
        (35, 19, "/do/1/attempt/try/0/get/with/endpoint/authentication/use",
         "unknown authentication policy 'other'; expected one of those declared under use.authentications: api"),
        (37, 9, "/do/1/attempt/catch/retry", "unknown retry policy 'aggressive'; expected one of those declared under use.retries: gentle"),
        (41, 7, "/do/2/slow/timeout", "unknown timeout 'long'; expected one of those declared under use.timeouts: short"),
    ]


def test_authentication_in_call_arguments_is_data_not_a_reference() -> None:
    body = "do:\n  - a:\n      call: myFunction:1.0.0@itinera\n      with:\n        authentication: whatever\n"

    load_definition(HEAD + body)


def test_runtime_expressions_must_compile() -> None:
    found = file_problems("invalid-expressions.yaml")

    assert [(line, column, pointer) for line, column, pointer, _ in found] == [
        (8, 7, "/do/0/compute/if"),  # bare jq: `if` is always an expression
        (10, 9, "/do/0/compute/set/total"),
        (13, 9, "/do/0/compute/output/as"),
        (18, 9, "/do/1/loop/for/each"),
        (19, 9, "/do/1/loop/for/in"),
        (25, 15, "/do/1/loop/do/0/step/with/endpoint"),
        (29, 13, "/do/2/choose/switch/0/big/when"),
    ]
    messages = dict(((pointer, message) for _, _, pointer, message in found))
    assert messages["/do/1/loop/for/each"] == (
        "'line-item' cannot name an expression variable; use letters, digits and '_', not starting with a digit"
    )
    assert all(
        message.startswith("invalid runtime expression: ") for pointer, message in messages.items() if pointer != "/do/1/loop/for/each"
    )


def test_strings_that_are_not_whole_expressions_are_left_alone() -> None:
    body = (
        "do:\n  - a:\n      set:\n        text: 'costs ${ 5 } or more'\n        brace: '{not jq'\n"
        "      metadata:\n        note: ${ (( }\n"
    )

    load_definition(HEAD + body)


def test_document_version_names_and_evaluate() -> None:
    assert file_problems("invalid-document.yaml") == [
        (2, 3, "/document/dsl", "Itinera runs DSL 1.0.x definitions; this one declares '2.0.0'"),
        (7, 3, "/evaluate/language", "Itinera evaluates runtime expressions in jq only; got 'javascript'"),
        (9, 5, "/do/0/end", "a task cannot be named 'end': 'then: end' would be ambiguous"),
        (15, 5, "/do/2/again", "task name 'again' is already used by item 1 of this list; "
         "names must be unique within a list so that 'then' can refer to them"),
    ]


def test_semantic_checks_wait_for_the_schema_to_pass() -> None:
    # The unknown `then` target is only reported once the schema problem is fixed.
    body = "do:\n  - a:\n      set: {x: 1}\n      then: nowhere\n  - b:\n      wait: soon\n"

    assert [pointer for _, _, pointer, _ in problems_of(body)] == ["/do/1/b/wait"]


def test_jq_stands_in_when_the_expression_engine_is_missing() -> None:
    check = expression_syntax._jq_syntax_error

    assert check(".a + $context.x | $item") is None
    assert (check(".a +") or "").startswith("syntax error")
    assert expression_syntax.syntax_error("   ") == "the expression is empty"
