"""Itinera's block catalog, exposed to definitions as ``<name>:<version>@itinera``."""

from itinera.catalog.block import Block, BlockContext
from itinera.catalog.registry import CATALOG_NAME, all_blocks, find, register

__all__ = ["CATALOG_NAME", "Block", "BlockContext", "all_blocks", "find", "register"]
