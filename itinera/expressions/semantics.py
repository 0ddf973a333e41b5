"""jq 1.8's value semantics on plain Python JSON values, for the native evaluator.

Each operation here either gives exactly what jq gives, raises :class:`JqError` where jq
raises an error (with jq's wording), or raises :class:`Unsupported` when the case is one we
have not proven equal to jq (huge integers, non-finite numbers, string repetition or
splitting, exotic types); the caller then hands the whole expression to real jq.

Numbers: jq computes in IEEE doubles and prints them in the shortest form that round-trips,
as an integer when the double is integral and not too large (``1.0 + 1`` prints ``2``).
:func:`number` reproduces that printing choice, so a native result has the type the jq
fallback's output would parse to. Integers beyond 2**53 are left to jq: jq compares two
*literal* numbers exactly but a computed one as a double, a distinction plain ints lose.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson

SAFE_INT = 2**53
QUADRATIC_LIMIT = 100_000


class JqError(Exception):
    """An error jq itself would raise; ``?`` suppresses it."""


class Empty(Exception):
    """The expression produced no output (e.g. ``.a?`` on a number)."""


class Unsupported(Exception):
    """A case the native evaluator does not model; evaluate with jq instead."""


_KIND_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def kind_name(value: Any) -> str:
    """jq's name for the kind of ``value`` ("null", "boolean", "number", ...)."""
    name = _KIND_NAMES.get(type(value))
    if name is None:
        # Subclasses and other types are left to jq's input conversion.
        raise Unsupported(f"not a plain JSON value: {type(value).__name__}")
    return name


def _dump(value: Any) -> str:
    """A short rendering of a value for an error message, truncated as jq truncates."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # too deep, or not JSON
        return "..."
    return text if len(text) <= 30 else text[:27] + "..."


def describe(value: Any) -> str:
    """``number (1)``, ``string ("a")``: how jq names a value in its error messages."""
    return f"{kind_name(value)} ({_dump(value)})"


def number(value: float) -> int | float:
    """The Python number jq's printed form of the double ``value`` parses back to."""
    if not math.isfinite(value):
        raise Unsupported("non-finite number")
    if value.is_integer():
        if -1e16 < value < 1e16:
            return int(value)
        # jq prints the shortest round-trip digits (as repr does), padded with zeros
        # ("123456789012345680000", not the double's exact value), and switches to an exponent
        # once that padding would pass 15 zeros ("1e+16", "1.5e+17").
        mantissa, _, exponent = repr(value).partition("e")
        digits = mantissa.replace(".", "").replace("-", "").rstrip("0")
        if int(exponent or "0") + 1 <= len(digits) + 15:
            return int(Decimal(repr(value)))
    return value


def _as_double(value: int | float) -> float:
    if type(value) is int and not -SAFE_INT <= value <= SAFE_INT:
        raise Unsupported("integer beyond 2**53")
    return float(value)


def _is_number(value: Any) -> bool:
    t = type(value)
    return t is int or t is float


# --------------------------------------------------------------------------- ordering

_ORDER = {type(None): 0, int: 3, float: 3, str: 4, list: 5, dict: 6}


def _order(value: Any) -> int:
    if value is False:
        return 1
    if value is True:
        return 2
    rank = _ORDER.get(type(value))
    if rank is None:
        raise Unsupported(f"not a JSON value: {type(value).__name__}")
    return rank


def compare(a: Any, b: Any) -> int:
    """jq's total order: null < false < true < numbers < strings < arrays < objects.

    Arrays compare element by element, then by length; objects first by their sorted key
    lists, then by their values in key order.
    """
    ra, rb = _order(a), _order(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 3:
        # Python compares int/int and int/float exactly; jq compares two literals exactly
        # and anything else as doubles. They agree while ints are exact doubles.
        _as_double(a)
        _as_double(b)
        for x in (a, b):
            if type(x) is float and not math.isfinite(x):
                raise Unsupported("non-finite number")
        return -1 if a < b else (1 if a > b else 0)
    if ra == 4:
        # Code point order equals the UTF-8 byte order jq uses.
        return -1 if a < b else (1 if a > b else 0)
    if ra == 5:
        for x, y in zip(a, b):
            r = compare(x, y)
            if r:
                return r
        return -1 if len(a) < len(b) else (1 if len(a) > len(b) else 0)
    if ra == 6:
        keys_a, keys_b = sorted(a), sorted(b)
        r = compare(keys_a, keys_b)
        if r:
            return r
        for key in keys_a:
            r = compare(a[key], b[key])
            if r:
                return r
        return 0
    return 0  # null, false, true: one value each


def equal(a: Any, b: Any) -> bool:
    """jq's ``==``."""
    ta = type(a)
    if ta is type(b) and (ta is str or ta is bool or a is None):
        return bool(a == b)
    return compare(a, b) == 0


def truthy(value: Any) -> bool:
    """jq's truth: everything but ``false`` and ``null``."""
    return value is not None and value is not False


# --------------------------------------------------------------------------- arithmetic


def add(a: Any, b: Any) -> Any:
    """jq's ``+``: null is the identity; numbers add; strings and arrays concatenate;
    objects merge shallowly, the right side winning."""
    if a is None:
        return b
    if b is None:
        return a
    ta, tb = type(a), type(b)
    if _is_number(a) and _is_number(b):
        return number(_as_double(a) + _as_double(b))
    if ta is tb and (ta is str or ta is list):
        return a + b
    if ta is dict and tb is dict:
        return {**a, **b}
    kind_name(a), kind_name(b)  # reject non-JSON types as Unsupported, not as a jq error
    raise JqError(f"{describe(a)} and {describe(b)} cannot be added")


def subtract(a: Any, b: Any) -> Any:
    """jq's ``-``: numbers; arrays lose every element equal to one in the right side."""
    if _is_number(a) and _is_number(b):
        return number(_as_double(a) - _as_double(b))
    if type(a) is list and type(b) is list:
        if len(a) * len(b) > QUADRATIC_LIMIT:
            # Quadratic: let jq do it, under the sandbox's time limit.
            raise Unsupported("large array difference")
        return [x for x in a if not any(equal(x, y) for y in b)]
    kind_name(a), kind_name(b)
    raise JqError(f"{describe(a)} and {describe(b)} cannot be subtracted")


def multiply(a: Any, b: Any) -> Any:
    """jq's ``*``: numbers; objects merge recursively. String repetition is left to jq."""
    if _is_number(a) and _is_number(b):
        return number(_as_double(a) * _as_double(b))
    if type(a) is dict and type(b) is dict:
        return _deep_merge(a, b)
    if (type(a) is str and _is_number(b)) or (_is_number(a) and type(b) is str):
        raise Unsupported("string repetition")
    kind_name(a), kind_name(b)
    raise JqError(f"{describe(a)} and {describe(b)} cannot be multiplied")


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, bv in b.items():
        av = out.get(key)
        out[key] = _deep_merge(av, bv) if type(av) is dict and type(bv) is dict else bv
    return out


def divide(a: Any, b: Any) -> Any:
    """jq's ``/`` on numbers (string splitting is left to jq)."""
    if _is_number(a) and _is_number(b):
        if b == 0:
            raise JqError(
                f"{describe(a)} and {describe(b)} cannot be divided because the divisor is zero"
            )
        return number(_as_double(a) / _as_double(b))
    if type(a) is str and type(b) is str:
        raise Unsupported("string splitting")
    kind_name(a), kind_name(b)
    raise JqError(f"{describe(a)} and {describe(b)} cannot be divided")


def modulo(a: Any, b: Any) -> Any:
    """jq's ``%``: both sides truncated to integers; the result takes the dividend's sign."""
    if _is_number(a) and _is_number(b):
        da, db = _as_double(a), _as_double(b)
        if not (abs(da) < SAFE_INT and abs(db) < SAFE_INT):  # also excludes inf and nan
            raise Unsupported("remainder outside the exact range")
        ia, ib = int(da), int(db)
        if ib == 0:
            raise JqError(
                f"{describe(a)} and {describe(b)} cannot be divided (remainder) "
                "because the divisor is zero"
            )
        r = abs(ia) % abs(ib)
        return -r if ia < 0 else r
    kind_name(a), kind_name(b)
    raise JqError(f"{describe(a)} and {describe(b)} cannot be divided (remainder)")


def negate(a: Any) -> Any:
    """jq's unary minus (jq 1.8 keeps a literal's precision, as Python does)."""
    if _is_number(a):
        if a == 0 and type(a) is float:
            # A float zero here is a literal (computed zeros are ints), which jq negates as
            # decimal 0 - x: positive zero.
            return 0.0
        return -a
    kind_name(a)
    raise JqError(f"{describe(a)} cannot be negated")


# --------------------------------------------------------------------------- access


def index(container: Any, key: str | int) -> Any:
    """``.[key]`` for a literal string or integer key."""
    t = type(container)
    if isinstance(key, str):
        if t is dict:
            return container.get(key)
        if container is None:
            return None
    else:
        if t is list:
            if key < 0:
                key += len(container)
                if key < 0:
                    return None
            return container[key] if key < len(container) else None
        if container is None:
            return None
    if t is not dict and t is not list:
        kind_name(container)
    raise JqError(f"Cannot index {kind_name(container)} with {describe(key)}")


def length(value: Any) -> Any:
    """jq's ``length``."""
    t = type(value)
    if t is str or t is list or t is dict:
        return len(value)
    if value is None:
        return 0
    if t is int or t is float:
        return abs(value)  # jq 1.8 keeps a literal's digits: length of -1.0 is 1.0
    kind_name(value)
    raise JqError(f"{describe(value)} has no length")


def type_name(value: Any) -> str:
    """jq's ``type``."""
    return kind_name(value)


def object_key(key: Any) -> str:
    """Check a computed object key."""
    if type(key) is str:
        return key
    raise JqError(f"Cannot use {describe(key)} as object key")
