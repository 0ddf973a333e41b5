"""Collecting located problems while a definition is checked, then raising them together."""

from __future__ import annotations

from itinera.errors import DefinitionError, DefinitionProblem, Location
from itinera.journeys.pointers import Positions


class Problems:
    """The problems found so far in one definition, located through its :class:`Positions`."""

    def __init__(self, *, file: str, positions: Positions) -> None:
        self.file = file
        self.positions = positions
        self._items: list[DefinitionProblem] = []

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, pointer: str, message: str, *, at: tuple[int, int] | None = None) -> None:
        """Record a problem with the node at ``pointer`` (or at an explicit line and column)."""
        line, column = at if at is not None else self.positions.find(pointer)
        location = Location(file=self.file, line=line, column=column, pointer=pointer)
        self._items.append(DefinitionProblem(location=location, message=message))

    def extend(self, problems: list[DefinitionProblem]) -> None:
        self._items.extend(problems)

    def sorted(self) -> list[DefinitionProblem]:
        """The problems without duplicates, in the order they appear in the file."""
        unique: dict[tuple[int, int, str, str], DefinitionProblem] = {}
        for problem in self._items:
            where = problem.location
            unique.setdefault((where.line, where.column, where.pointer, problem.message), problem)
        return [unique[key] for key in sorted(unique)]

    def raise_if_any(self) -> None:
        """Raise a :class:`DefinitionError` holding every problem, if there is one."""
        if self._items:
            raise DefinitionError(self.sorted())
