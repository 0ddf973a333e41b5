"""JSON Pointers (RFC 6901) and the source positions they map to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def escape(token: str | int) -> str:
    """Escape one reference token (``~`` becomes ``~0``, ``/`` becomes ``~1``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join(pointer: str, *tokens: str | int) -> str:
    """Append reference tokens to a pointer: ``join("/do", 0, "greet") == "/do/0/greet"``."""
    return pointer + "".join("/" + escape(token) for token in tokens)


def from_path(path: Iterable[str | int]) -> str:
    """The pointer of a path of keys and indexes, such as jsonschema's ``absolute_path``."""
    return join("", *path)


def split(pointer: str) -> list[str]:
    """The unescaped reference tokens of a pointer; ``""`` (the whole document) has none.

    Raises:
        ValueError: ``pointer`` is neither ``""`` nor starts with ``/``.
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"invalid JSON Pointer {pointer!r}: it must be empty or start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def parent(pointer: str) -> str:
    """The pointer one level up; the parent of ``""`` is ``""``."""
    return pointer[: pointer.rfind("/")] if pointer else ""


def last(pointer: str) -> str:
    """The last unescaped token of a pointer (``""`` for the whole document)."""
    tokens = split(pointer)
    return tokens[-1] if tokens else ""


class Positions:
    """Where each node of a parsed document is written: pointer to 1-based (line, column).

    A mapping member is placed at its key (where the entry begins); a sequence item at the
    item itself; the whole document at its first node.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, tuple[int, int]]) -> None:
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, pointer: object) -> bool:
        return pointer in self._entries

    def find(self, pointer: str) -> tuple[int, int]:
        """The position of ``pointer``, or of its nearest ancestor that exists; ``(1, 1)`` if none.

        Raises:
            ValueError: ``pointer`` is not a JSON Pointer.
        """
        split(pointer)  # validates
        while True:
            found = self._entries.get(pointer)
            if found is not None:
                return found
            if not pointer:
                return (1, 1)
            pointer = parent(pointer)
