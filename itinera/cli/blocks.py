"""``itinera blocks``: the built-in block catalog and its contracts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from itinera.cli.console import emit_json, out


def blocks(
    as_json: Annotated[bool, typer.Option("--json", help="Print every block's contract (input and output JSON Schemas).")] = False,
) -> None:
    """Blocks a journey can call as `call: <name>:<version>@itinera` (no `use.catalogs` needed)."""
    from itinera.catalog import all_blocks

    found = all_blocks()
    if as_json:
        emit_json([b.contract() for b in found])
        return
    table = Table("call", "summary", "inputs")
    for block in found:
        fields = block.input_model.model_json_schema().get("properties", {})
        required = set(block.input_model.model_json_schema().get("required", []))
        inputs = ", ".join(f"{name}{'' if name in required else '?'}" for name in fields)
        table.add_row(escape(block.reference), escape(block.summary), escape(inputs))
    out.print(table)
