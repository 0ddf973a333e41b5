"""The built-in block catalog: every block the engine can call by ``name:version@itinera``."""

from __future__ import annotations

from itinera.catalog.block import Block

CATALOG_NAME = "itinera"
_blocks: dict[tuple[str, str], Block] = {}


def register(block: Block) -> Block:
    """Add ``block`` to the catalog (a later registration of the same name and version wins)."""
    _blocks[(block.name, block.version)] = block
    return block


def find(name: str, version: str) -> Block | None:
    """The block ``name:version``, or None."""
    _load_builtins()
    return _blocks.get((name, version))


def all_blocks() -> list[Block]:
    _load_builtins()
    return sorted(_blocks.values(), key=lambda b: (b.name, b.version))


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from itinera.catalog import basic  # noqa: F401 -- registers on import
