"""Durations as the DSL writes them: ISO 8601 text or an inline mapping, to seconds."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_NUMBER = r"(\d+(?:\.\d+)?)"
_ISO = re.compile(
    rf"P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
# Seconds per unit, in the order the units appear in the text. Years and months are None: they
# have no fixed length, so a runtime could only guess at them.
_UNITS: tuple[tuple[str, int | None], ...] = (
    ("years", None),
    ("months", None),
    ("weeks", 7 * 86_400),
    ("days", 86_400),
    ("hours", 3_600),
    ("minutes", 60),
    ("seconds", 1),
)
_INLINE_UNITS: dict[str, Decimal] = {
    "days": Decimal(86_400),
    "hours": Decimal(3_600),
    "minutes": Decimal(60),
    "seconds": Decimal(1),
    "milliseconds": Decimal("0.001"),
}
_EXAMPLES = "such as 'PT1H30M', 'P3D' or 'PT0.25S'"


def parse_duration(value: str | dict[str, Any]) -> float:
    """Convert a DSL duration to seconds.

    Two forms are accepted, as the DSL defines them:

    * ISO 8601 text: ``"PT1H30M"`` (5400.0), ``"P3D"``, ``"P1W"``, ``"PT0.25S"``. Only the last
      component may have a fraction. Years and months are refused: their length varies.
    * the inline mapping ``{days, hours, minutes, seconds, milliseconds}`` of non-negative
      integers, at least one of them: ``{"minutes": 1, "milliseconds": 500}`` (60.5).

    Raises:
        ValueError: ``value`` is neither form; the message says what was expected.
    """
    if isinstance(value, str):
        return _parse_iso(value)
    if isinstance(value, dict):
        return _parse_inline(value)
    raise ValueError(
        f"a duration is ISO 8601 text {_EXAMPLES}, or a mapping of days, hours, minutes, "
        f"seconds and milliseconds; got {type(value).__name__}"
    )


def _parse_iso(text: str) -> float:
    if text.strip().startswith("${"):
        raise ValueError(f"{text!r} is a runtime expression; its duration is only known when it runs")
    match = _ISO.fullmatch(text)
    if match is None or not any(match.groups()) or text.endswith("T"):
        raise ValueError(f"invalid duration {text!r}: expected ISO 8601 {_EXAMPLES}")
    present = [(number, unit) for number, unit in zip(match.groups(), _UNITS, strict=True) if number is not None]
    for number, (name, _) in present[:-1]:
        if "." in number:
            raise ValueError(
                f"invalid duration {text!r}: only the last component may have a fraction, not the {name}"
            )
    total = Decimal(0)
    for number, (name, seconds) in present:
        if seconds is None:
            raise ValueError(
                f"invalid duration {text!r}: {name} have no fixed length; use weeks or days instead "
                "(for example 'P30D')"
            )
        total += Decimal(number) * seconds
    return float(total)


def _parse_inline(mapping: dict[str, Any]) -> float:
    if not mapping:
        raise ValueError("an inline duration needs at least one of days, hours, minutes, seconds, milliseconds")
    total = Decimal(0)
    for name, amount in mapping.items():
        unit = _INLINE_UNITS.get(name)
        if unit is None:
            raise ValueError(
                f"unknown duration unit {name!r}; expected days, hours, minutes, seconds or milliseconds"
            )
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"duration {name} must be a non-negative integer; got {amount!r}")
        total += amount * unit
    return float(total)
