"""The expression layer's public API: strict-mode detection, compiling, the guard against
builtins that reach outside, variables, templates and the result convention."""

from __future__ import annotations

from typing import Any

import pytest

import itinera.expressions as expressions
from itinera.errors import ErrorType, ExpressionError
from itinera.expressions import (
    Expression,
    Template,
    compile_expression,
    compile_value,
    is_expression,
    syntax_error,
    unwrap,
)


def test_public_surface() -> None:
    assert sorted(expressions.__all__) == [
        "Expression",
        "Template",
        "compile_expression",
        "compile_value",
        "is_expression",
        "syntax_error",
        "unwrap",
    ]


# --------------------------------------------------------------------------- strict mode


@pytest.mark.parametrize(
    "value",
    ["${ .a }", "${.a}", "  ${ .a }\n", "${ {a: 1} }", "${}", "${ \"}\" }"],
)
def test_strict_expressions_are_detected(value: str) -> None:
    assert is_expression(value)


@pytest.mark.parametrize(
    "value",
    [".a", "$.a", "{ .a }", "${ .a", ".a }", "prefix ${ .a }", "${ .a } suffix", "$ { .a }", 3, None, ["${ .a }"], b"${ .a }"],
)
def test_other_values_are_not_expressions(value: object) -> None:
    assert not is_expression(value)


def test_unwrap() -> None:
    assert unwrap("${ .a }") == ".a"
    assert unwrap("  ${.a | length}  ") == ".a | length"
    with pytest.raises(ExpressionError):
        unwrap(".a")


# --------------------------------------------------------------------------- compiling


def test_compile_is_cached_per_text() -> None:
    first = compile_expression(".customer.plan")
    assert compile_expression(".customer.plan") is first
    assert compile_expression(".customer.tier") is not first


def test_native_and_jq_expressions() -> None:
    native = compile_expression('.plan == "premium"')
    assert isinstance(native, Expression)
    assert native.native and native.source == '.plan == "premium"'
    fallback = compile_expression("[.items[] | .price] | add")
    assert not fallback.native
    assert fallback.evaluate({"items": [{"price": 2}, {"price": 3}]}, {}) == 5


@pytest.mark.parametrize(
    "text",
    [".a +", "{a:}", ".[", "1 == 2 == 3", "nosuchfunction", "$undefined_thing | f(1)", "", "   "],
)
def test_syntax_errors_are_one_line_messages(text: str) -> None:
    message = syntax_error(text)
    assert message is not None and "\n" not in message
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert caught.value.problem.type == ErrorType.EXPRESSION
    assert caught.value.problem.status == 400


@pytest.mark.parametrize("text", [".a", ".a | length > 2", "[.[] | select(.ok)] | length", "$context.user"])
def test_valid_expressions_have_no_syntax_error(text: str) -> None:
    assert syntax_error(text) is None


def test_unbalanced_brackets_cannot_escape_the_wrapper() -> None:
    assert syntax_error("1) | (1") is not None
    assert syntax_error(".a)] | tojson, ([1") is not None


# --------------------------------------------------------------------------- the guard


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("env", "env"),
        ("env.HOME", "env"),
        ("$ENV.HOME", "$ENV"),
        ("$ENV | keys", "$ENV"),
        ("input", "input"),
        ("[inputs]", "inputs"),
        ("debug", "debug"),
        ('debug("x")', "debug"),
        ("stderr", "stderr"),
        ("input_filename", "input_filename"),
        ("$__loc__", "$__loc__"),
        ("$__prog_args", "$__prog_args"),
        ("halt", "halt"),
        ('"bye" | halt_error', "halt_error"),
        ('halt_error(1)', "halt_error"),
        ("input_line_number", "input_line_number"),
        ("get_search_list", "get_search_list"),
        ('import "a" as a; .', "import"),
        ('include "a"; .', "include"),
        ("now", "now"),
        ("now | localtime", "now"),
        ("0 | localtime", "localtime"),
        ('0 | strflocaltime("%H")', "strflocaltime"),
        ("get_prog_origin", "get_prog_origin"),
        ("modulemeta", "modulemeta"),
        ('"\\(env)"', "env"),  # an interpolation is code
        ('"a \\("b \\(env.X)")"', "env"),
        ("{a: env}", "env"),
        ("{(env | keys[0]): 1}", "env"),
        (".[1, env:]", "env"),
        ("def f: env; f", "env"),
        ("$__d", "$__d"),
    ],
)
def test_forbidden_builtins_are_rejected_by_name(text: str, name: str) -> None:
    message = syntax_error(text)
    assert message is not None and message.startswith(name + " "), message
    assert "not allowed" in message
    with pytest.raises(ExpressionError, match="not allowed"):
        compile_expression(text)


@pytest.mark.parametrize(
    "text",
    [
        '"env"',
        '"$ENV and input and now"',
        ".env",
        '.["env"]',
        '."env"',
        "{env: 1}",
        "{env}",
        "{a: 1, input: 2, now}",
        "# env is not read here\n.a",
        ".a # a comment continued by a backslash \\\nenv",  # jq 1.8: still the comment
        ".environment | .input_data",
        "$input",
        "$context.env",
        "mktime? // 0",
        "[1, 2] | getpath([0])",
        '"2024-01-01T00:00:00Z" | fromdateiso8601',
    ],
)
def test_lookalikes_are_allowed(text: str) -> None:
    assert syntax_error(text) is None


def test_allowed_names_evaluate() -> None:
    assert compile_expression('{env: .env, input: "x"}').evaluate({"env": "prod"}, {}) == {
        "env": "prod",
        "input": "x",
    }
    assert compile_expression('"env: \\(.env)"').evaluate({"env": "prod"}, {}) == "env: prod"


# --------------------------------------------------------------------------- variables


def test_variables_are_reported_and_passed() -> None:
    expression = compile_expression("$context.user.id + ($input.n | tostring)")
    assert expression.variables == {"context", "input"}
    assert expression.evaluate(None, {"context": {"user": {"id": "u"}}, "input": {"n": 1}}) == "u1"

    native = compile_expression("{user: $context.user, raw: $workflow.input}")
    assert native.native and native.variables == {"context", "workflow"}


def test_unused_variables_are_not_required() -> None:
    for text in (".a", "[.a] | first"):
        expression = compile_expression(text)
        assert expression.variables == frozenset()
        assert expression.evaluate({"a": 1}, {}) == 1
        assert expression.evaluate({"a": 1}, {"secrets": {"k": "v"}, "context": {}}) == 1


def test_locally_bound_variables_are_not_free() -> None:
    expression = compile_expression(". as $x | $x.a + $step")
    assert expression.variables == {"step"}
    assert expression.evaluate({"a": 1}, {"step": 2}) == 3


def test_any_variable_name_can_be_passed() -> None:
    # A `for` task binds its own names ($item, $index).
    expression = compile_expression("{name: $item.name, at: $index}")
    assert expression.variables == {"item", "index"}
    assert expression.evaluate(None, {"item": {"name": "n"}, "index": 2}) == {"name": "n", "at": 2}


@pytest.mark.parametrize("text", ["$context.a", "[$context] | length"])
def test_a_missing_variable_is_an_expression_error(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"\$context"):
        compile_expression(text).evaluate({}, {})


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        (".a", {"a": [1]}, [1]),
        ("empty", {}, None),
        (".a?", 3, None),
        (".[]", [1, 2, 3], [1, 2, 3]),
        (".a, .b", {"a": 1, "b": 2}, [1, 2]),
    ],
)
def test_result_convention(text: str, data: Any, expected: Any) -> None:
    assert compile_expression(text).evaluate(data, {}) == expected


def test_several_outputs_are_a_list_and_one_output_is_itself() -> None:
    assert compile_expression(".[]").evaluate([[1]], {}) == [1]  # one output: itself
    assert compile_expression(".a, .b").evaluate({"a": 1}, {}) == [1, None]
    assert compile_expression(".a?, 5").evaluate(3, {}) == 5


def test_jq_errors_are_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="Cannot index number") as caught:
        compile_expression(".a.b").evaluate({"a": 5}, {})
    assert caught.value.expression == ".a.b"
    assert caught.value.retryable is False
    with pytest.raises(ExpressionError, match="boom"):
        compile_expression('error("boom")').evaluate(None, {})


# --------------------------------------------------------------------------- templates


def test_a_template_without_expressions_is_constant_and_not_copied() -> None:
    value = {"to": "ops@example.com", "tags": ["a", "${ not an expression"], "n": 1}
    template = compile_value(value)
    assert isinstance(template, Template)
    assert template.constant and template.variables == frozenset()
    assert template.evaluate({"x": 1}, {}) is value


def test_template_with_nested_expressions() -> None:
    value = {
        "to": "${ .customer.email }",
        "subject": "Welcome",
        "body": {
            "lines": ["Hi", "${ .customer.name }", {"plan": "${ $context.plan }"}],
            "static": {"deep": [1, 2]},
        },
        "${ .keyName }": "${ [.items[] | .sku] }",
    }
    template = compile_value(value)
    assert not template.constant
    assert template.variables == {"context"}
    data = {"customer": {"email": "a@b.c", "name": "Ada"}, "keyName": "skus", "items": [{"sku": 1}]}
    out = template.evaluate(data, {"context": {"plan": "gold"}})
    assert out == {
        "to": "a@b.c",
        "subject": "Welcome",
        "body": {"lines": ["Hi", "Ada", {"plan": "gold"}], "static": {"deep": [1, 2]}},
        "skus": [1],
    }
    assert out["body"]["static"] is value["body"]["static"]  # constant parts are shared


def test_a_bare_expression_template() -> None:
    template = compile_value("${ .a + 1 }")
    assert not template.constant
    assert template.evaluate({"a": 1}, {}) == 2
    assert compile_value(7).evaluate(None, {}) == 7


def test_template_compile_errors_name_the_place() -> None:
    with pytest.raises(ExpressionError, match=r"^/body/1: .*not allowed"):
        compile_value({"body": ["ok", "${ env.HOME }"]})
    with pytest.raises(ExpressionError, match=r"^/a~1b: "):
        compile_value({"a/b": "${ .x + }"})


def test_a_key_expression_must_produce_a_string() -> None:
    with pytest.raises(ExpressionError, match="object key"):
        compile_value({"${ .n }": 1}).evaluate({"n": 1}, {})
