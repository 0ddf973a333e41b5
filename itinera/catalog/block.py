"""A block: a reusable step with a typed contract, exposed to definitions as a catalog function.

Definitions call blocks with the DSL's catalog syntax, ``call: <name>:<version>@itinera``; the
built-in catalog ``itinera`` needs no ``use.catalogs`` entry. Each block declares pydantic input
and output models; the engine validates the ``with`` arguments against the input model before
the block runs and the block's result against the output model after, and publishes both as
JSON Schema (``itinera blocks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True, kw_only=True, slots=True)
class BlockContext:
    """What a block may know about the run that calls it."""

    run_id: str
    subject: str | None
    now: float
    task: str
    record: Callable[..., None]


@dataclass(frozen=True, kw_only=True, slots=True)
class Block:
    """A catalog function: ``name:version@itinera``."""

    name: str
    version: str
    summary: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    run: Callable[[Any, BlockContext], Any]

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.version}@itinera"

    def contract(self) -> dict[str, Any]:
        """The block's published contract: its input and output JSON Schemas."""
        return {
            "reference": self.reference,
            "summary": self.summary,
            "input": self.input_model.model_json_schema(),
            "output": self.output_model.model_json_schema(),
        }
