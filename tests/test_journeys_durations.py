"""parse_duration: the DSL's ISO 8601 and inline durations, in seconds."""

from __future__ import annotations

from typing import Any

import pytest

from itinera.journeys import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("PT1H30M", 5400.0),
        ("P3D", 259_200.0),
        ("PT0.25S", 0.25),
        ("P1W", 604_800.0),
        ("P1DT2H3M4S", 93_784.0),
        ("PT36H", 129_600.0),
        ("PT0S", 0.0),
        ("P0.5D", 43_200.0),
        ("PT1M0.001S", 60.001),
        ({"hours": 2, "minutes": 15, "seconds": 30}, 8130.0),
        ({"days": 1}, 86_400.0),
        ({"milliseconds": 250}, 0.25),
        ({"minutes": 1, "milliseconds": 500}, 60.5),
        ({"seconds": 0}, 0.0),
    ],
)
def test_valid_durations(value: str | dict[str, Any], seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "invalid duration '5 minutes': expected ISO 8601 such as 'PT1H30M', 'P3D' or 'PT0.25S'"),
        ("P", "invalid duration 'P'"),
        ("PT", "invalid duration 'PT'"),
        ("P1DT", "invalid duration 'P1DT'"),
        ("pt1h", "invalid duration 'pt1h'"),
        ("-PT1S", "invalid duration '-PT1S'"),
        ("PT1,5S", "invalid duration 'PT1,5S'"),
        ("P1M", "months have no fixed length; use weeks or days instead (for example 'P30D')"),
        ("P2Y", "years have no fixed length"),
        ("PT1.5H30M", "only the last component may have a fraction, not the hours"),
        ("${ .delay }", "is a runtime expression; its duration is only known when it runs"),
        ({}, "an inline duration needs at least one of days, hours, minutes, seconds, milliseconds"),
        ({"weeks": 1}, "unknown duration unit 'weeks'; expected days, hours, minutes, seconds or milliseconds"),
        ({"seconds": -1}, "duration seconds must be a non-negative integer; got -1"),
        ({"seconds": 1.5}, "duration seconds must be a non-negative integer; got 1.5"),
        ({"seconds": True}, "duration seconds must be a non-negative integer; got True"),
        (30, "a duration is ISO 8601 text"),
    ],
)
def test_invalid_durations_say_what_was_expected(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)

    assert message in str(caught.value)
