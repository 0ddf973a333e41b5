"""Itinera: durable, governed orchestration of personalized customer and employee journeys."""

from __future__ import annotations

__version__ = "0.1.0"

from itinera.clock import SystemClock, VirtualClock
from itinera.engine import Deployed, Engine, RunView, SendResult, Worker
from itinera.errors import (
    DefinitionError,
    EventError,
    ExpressionError,
    ItineraError,
    MisuseError,
    Problem,
    RunFailure,
)
from itinera.journeys import Definition, load_definition, load_file
from itinera.settings import Settings

__all__ = [
    "Definition",
    "DefinitionError",
    "Deployed",
    "Engine",
    "EventError",
    "ExpressionError",
    "ItineraError",
    "MisuseError",
    "Problem",
    "RunFailure",
    "RunView",
    "SendResult",
    "Settings",
    "SystemClock",
    "VirtualClock",
    "Worker",
    "__version__",
    "load_definition",
    "load_file",
]
