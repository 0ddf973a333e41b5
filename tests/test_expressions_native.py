"""The native evaluator agrees with jq: a property test over the subset's grammar, and the
tricky cases spelled out.

The reference is the product's own jq path (the sandbox), so the comparison covers what a
fallback would really return, number formatting included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from itinera.errors import ExpressionError
from itinera.expressions import compile_expression
from itinera.expressions.expression import compile_with_jq

Outcome = tuple[str, str | None]


def _outcome(evaluate: Any, data: Any, variables: dict[str, Any]) -> Outcome:
    try:
        # json.dumps keeps what == would hide: key order, 1 vs 1.0, True vs 1.
        return "ok", json.dumps(evaluate(data, variables))
    except ExpressionError:
        return "error", None


def _native_and_jq(text: str, data: Any, variables: dict[str, Any]) -> tuple[Outcome, Outcome]:
    native = compile_expression(text)
    assert native.native, f"{text!r} should be in the native subset"
    names = {name: variables[name] for name in native.variables}
    reference = compile_with_jq(text)
    assert not reference.native
    return _outcome(native.evaluate, data, names), _outcome(reference.evaluate, data, names)


# --------------------------------------------------------------------------- the property

KEYS = ["a", "b", "k", "A", "é"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([10, -7, 2**53, 2**53 + 1, 10**20]),
    st.sampled_from([0.5, 1.0, -2.5, 0.1, 3.0, -0.0, 1e-7, 1e15, 1e16, 1.5e300, 123456789.125]),
    st.sampled_from(["", "a", "b", "ab", "é", "A"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)
literals = st.sampled_from(
    [
        "null", "true", "false", "0", "1", "2", "3", "10", "1.0", "1.5", "1.50", "0.1", "1e2",
        "1.", ".5", "1e-7", "2.5", "123456789012", "0.30000000000000004",
        '"a"', '"b"', '""', '"ab"', '"\\u00e9"', "[]", "{}",
    ]
)  # fmt: skip
subscripts = st.sampled_from(
    [".a", ".b", ".k", '."a"', '.["b"]', ".[0]", ".[1]", ".[-1]", '."k"', '.["é"]']
)
optional = st.sampled_from(["", "", "?"])


@st.composite
def paths(draw: st.DrawFn) -> str:
    out = draw(st.sampled_from([".", "$x", "$y", ".a", ".b", ".[0]", '."a"', '.["k"]']))
    out += draw(optional)
    for _ in range(draw(st.integers(0, 2))):
        out += draw(subscripts) + draw(optional)
    return "." if out == ".." else out


atoms = st.one_of(paths(), literals, st.sampled_from(["length", "not", "type", "$x", "."]))
binary_operators = st.sampled_from(
    ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "//"]
)
object_keys = st.sampled_from(["a", "k", "if", "$x", '("z")', "($y)", '"b c"'])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("({} {} {})".format, inner, binary_operators, inner),
        st.builds("{} {} {}".format, inner, binary_operators, inner),  # precedence as jq has it
        st.builds("-{}".format, inner),
        st.builds("({})?".format, inner),
        st.builds("{} | not".format, inner),
        st.builds("{} | {}".format, inner, inner),
        st.builds("({}){}".format, inner, subscripts),
        st.builds("[{}]".format, inner),
        st.builds("[{}, {}]".format, inner, inner),
        st.builds("{}, {}".format, inner, inner),
        st.builds('{{{}: {}, "b": {}}}'.format, object_keys, inner, inner),
        st.builds('{{a, $x, "k", b: {}}}'.format, inner),
        st.builds("({} | length)".format, inner),
    )


native_texts = st.recursive(atoms, _extend, max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=native_texts, data=json_values, x=json_values, y=json_values)
def test_native_evaluation_equals_jq(text: str, data: Any, x: Any, y: Any) -> None:
    try:
        native = compile_expression(text)
    except ExpressionError:
        # Not valid jq (e.g. "1 == 2 == 3"): jq must reject it too.
        with pytest.raises(ExpressionError):
            compile_with_jq(text)
        return
    if not native.native:
        return  # outside the subset (a comma inside parentheses, ...): jq evaluates it anyway
    got, expected = _native_and_jq(text, data, {"x": x, "y": y})
    note(f"native={got!r} jq={expected!r}")
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(a=st.floats(allow_nan=False, allow_infinity=False), b=st.sampled_from([0, 1, 3, 0.5, -7]))
def test_computed_numbers_print_as_jq_prints_them(a: float, b: float) -> None:
    # jq prints a computed double in its shortest form, as an integer when it is integral and
    # not too large: the native result must have the type and digits that output parses to.
    for text in (".[0] + .[1]", ".[0] * .[1]"):
        got, expected = _native_and_jq(text, [a, b], {})
        assert got == expected


# --------------------------------------------------------------------------- tricky cases


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        # numbers: jq compares by value, computes in doubles, prints integral doubles as ints
        ("1 == 1.0", None, "true"),
        (".a == 1", {"a": 1.0}, "true"),
        (".a", {"a": 1.0}, "1.0"),
        ("{a: 1.0}", None, '{"a": 1.0}'),
        ("1.0 + 1", None, "2"),
        ("10 / 4", None, "2.5"),
        ("10 / 5", None, "2"),
        ("0.1 + 0.2", None, "0.30000000000000004"),
        ("1e16 + 0", None, "1e+16"),
        ("-.a, -.b", {"a": 0.0, "b": -0.0}, "[0.0, 0.0]"),
        ("7 % -3, -7 % 3, 5.9 % 2", None, "[1, -1, 1]"),
        ("length", -3.5, "3.5"),
        ("1 / -1 * 0", None, "0"),  # unary minus binds tighter than * in jq 1.8
        ("2 - -3 - 1", None, "4"),
        ("length", "h\u00e9llo", "5"),
        ("length", None, "0"),
        # objects: key order is insertion order; == ignores it
        ("{b: 1, a: 2}", None, '{"b": 1, "a": 2}'),
        ('{"a": 1, "b": 2} == {"b": 2, "a": 1}', None, "true"),
        ("{a: 1, b: 2} + {a: 3, c: 4}", None, '{"a": 3, "b": 2, "c": 4}'),
        ("{a: {x: 1, y: 2}} * {a: {x: 3}, b: 1}", None, '{"a": {"x": 3, "y": 2}, "b": 1}'),
        ("{a: 1, a: 2}", None, '{"a": 2}'),
        ("{a, $x, \"k\"}", {"a": 1, "k": 2}, '{"a": 1, "x": "X", "k": 2}'),
        ("{($x): 1}", None, '{"X": 1}'),
        ("{$x: .a}", {"a": 5}, '{"X": 5}'),
        ("{a: .b | . + 1, c: 1 == 1}", {"b": 1}, '{"a": 2, "c": true}'),
        # null propagation
        (".a.b.c", {}, "null"),
        (".a[0]", {}, "null"),
        (".[-1]", [1, 2, 3], "3"),
        (".[5]", [1, 2, 3], "null"),
        (".a.b", {"a": None}, "null"),
        (".a?.b", 5, "null"),  # no output
        # `//` and truthiness: only false and null give way
        ("false // \"d\"", None, '"d"'),
        (".a // \"d\"", {"a": False}, '"d"'),
        (".a // \"d\"", {"a": 0}, "0"),
        (".a // \"d\"", {"a": ""}, '""'),
        ("(.a?) // 1", 5, "1"),
        ("null or false", None, "false"),
        ("0 and \"\"", None, "true"),
        (".a | not", {"a": []}, "false"),
        # jq's total order across kinds
        ("[null < false, false < true, true < 0, 0 < \"\", \"\" < [], [] < {}]", None, "[true, true, true, true, true, true]"),
        ("[[1, 2] < [1, 3], [1] < [1, 0], [2] > [1, 9]]", None, "[true, true, true]"),
        ('[{"a": 2} < {"b": 1}, {"a": 1} < {"a": 1, "b": 0}, {"a": 1} < {"a": 2}]', None, "[true, true, true]"),
        ('["Z" < "a", "z" < "\\u00e9", "ab" > "a"]', None, "[true, true, true]"),
        # arithmetic on other kinds
        ("null + 1, 1 + null, null + null", None, "[1, 1, null]"),
        ('"a" + "b", [1] + [2]', None, '["ab", [1, 2]]'),
        ("[1, 2, 1, 3] - [1]", None, "[2, 3]"),
        ("[1, 1.0, 2] - [1.0]", None, "[2]"),
        # several outputs, no output
        (".a, .b", {"a": 1}, "[1, null]"),
        ("[.a?, .b?]", 5, "[]"),
        (".a, .b?", 5, "error"),
        # errors jq raises (and where it does not)
        (".a", 5, "error"),
        (".a.b", {"a": "s"}, "error"),
        (".a.b?", 5, "error"),  # only the last subscript is optional
        (".a.b // 1", {"a": 5}, "error"),  # jq 1.8's // does not swallow errors
        (".[0]", {"a": 1}, "error"),
        ('.["a"]', [1], "error"),
        ("1 / 0", None, "error"),
        ("5 % 0.5", None, "error"),
        ('{} - {}', None, "error"),
        ("length", True, "error"),
        ("{(.k): 1}", {"k": 1}, "error"),
        ('-"a"', None, "error"),
        ('-"ab" * 2', None, "error"),
        ("[.a?, .b]", 5, "error"),
    ],
)
def test_tricky_cases(text: str, data: Any, expected: str) -> None:
    got, reference = _native_and_jq(text, data, {"x": "X"})
    assert got == reference
    if expected == "error":
        assert got == ("error", None)
    else:
        assert got == ("ok", expected)


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        # Cases the native evaluator leaves to jq at run time give jq's answer.
        (".id", {"id": 123456789012345678901234567890}, 123456789012345678901234567890),
        (".id == .other", {"id": 12345678901234567890, "other": 12345678901234567891}, False),
        (".id + 1", {"id": 2**53}, 2**53),  # doubles, as jq computes
        ('.s * 3', {"s": "ab"}, "ababab"),
        ('.s / ","', {"s": "a,b"}, ["a", "b"]),
        ("{a: .} | .a", {"k": 1}, {"k": 1}),
    ],
)
def test_cases_left_to_jq_at_run_time(text: str, data: Any, expected: Any) -> None:
    expression = compile_expression(text)
    assert expression.native
    assert expression.evaluate(data, {}) == expected


def test_huge_literals_and_odd_numbers_are_not_native() -> None:
    for text in ("12345678901234567891", "1e400", "0.10000000000000001", ".a[1.5]", '"\\ud800"'):
        try:
            assert not compile_expression(text).native
        except ExpressionError:
            pass  # jq rejects it outright


def test_deep_or_long_programs_fall_back_to_jq() -> None:
    deep = "(" * 200 + "1" + ")" * 200
    assert not compile_expression(deep).native
    assert compile_expression(deep).evaluate(None, {}) == 1
    long = " + ".join(["(.a)"] * 150)
    assert not compile_expression(long).native
    assert compile_expression(long).evaluate({"a": "x"}, {}) == "x" * 150
