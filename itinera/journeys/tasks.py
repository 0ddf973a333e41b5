"""Finding every task of a definition, with the list it belongs to.

The walk does not trust the document's shape (it runs before schema validation too): anything
that is not where a task list or task would be is passed over.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from itinera.journeys.pointers import join

TASK_KINDS = ("call", "do", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait")
"""The keys that say what a task does; a task has exactly one (``for`` comes with a ``do``)."""


@dataclass(frozen=True, kw_only=True)
class TaskList:
    """A list of named tasks: ``pointer`` is the list's, ``names`` its tasks' in order."""

    pointer: str
    names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TaskSite:
    """One task: where its body is, its name, its body, kind and the list it is in.

    ``body`` is whatever the document holds (a mapping in a valid definition); ``kind`` is
    ``""`` unless the body has exactly one kind key. ``scope`` is None for a function of
    ``use.functions``, which is not in a list.
    """

    pointer: str
    name: str
    body: Any
    kind: str
    scope: TaskList | None


def task_kinds(body: dict[str, Any]) -> list[str]:
    """The kind keys a task body has (``for`` counts once, with its ``do``)."""
    kinds = [kind for kind in TASK_KINDS if kind in body]
    if "for" in kinds and "do" in kinds:
        kinds.remove("do")
    return kinds


def tasks(document: dict[str, Any]) -> Iterator[TaskSite]:
    """Every task: the functions', the extensions', then the workflow's, each followed by the
    tasks nested in it."""
    pending: list[TaskSite] = []
    use = _mapping(document.get("use"))
    for name, body in _mapping(use.get("functions")).items():
        pending.append(_site(join("/use/functions", name), name, body, None))
    for index, item in enumerate(_sequence(use.get("extensions"))):
        for name, extension in _mapping(item).items():
            for when in ("before", "after"):
                pending.extend(_items(join("/use/extensions", index, name, when), _mapping(extension).get(when)))
    pending.extend(_items("/do", document.get("do")))
    pending.reverse()
    while pending:
        site = pending.pop()
        yield site
        nested = [task for pointer, items in _lists_in(site) for task in _items(pointer, items)]
        pending.extend(reversed(nested))


def _items(pointer: str, items: Any) -> list[TaskSite]:
    if not isinstance(items, list):
        return []
    scope = TaskList(pointer=pointer, names=tuple(name for item in items if isinstance(item, dict) for name in item))
    return [
        _site(join(pointer, index, name), name, body, scope)
        for index, item in enumerate(items)
        if isinstance(item, dict)
        for name, body in item.items()
    ]


def _site(pointer: str, name: str, body: Any, scope: TaskList | None) -> TaskSite:
    kinds = task_kinds(body) if isinstance(body, dict) else []
    kind = kinds[0] if len(kinds) == 1 else ""
    return TaskSite(pointer=pointer, name=name, body=body, kind=kind, scope=scope)


def _lists_in(site: TaskSite) -> Iterator[tuple[str, Any]]:
    """The task lists directly inside one task (wherever the DSL puts them)."""
    body, pointer = site.body, site.pointer
    if not isinstance(body, dict):
        return
    yield join(pointer, "do"), body.get("do")
    yield join(pointer, "fork", "branches"), _mapping(body.get("fork")).get("branches")
    yield join(pointer, "try"), body.get("try")
    yield join(pointer, "catch", "do"), _mapping(body.get("catch")).get("do")
    yield join(pointer, "foreach", "do"), _mapping(body.get("foreach")).get("do")
    if body.get("call") == "asyncapi":
        subscription = _mapping(_mapping(body.get("with")).get("subscription"))
        yield join(pointer, "with", "subscription", "foreach", "do"), _mapping(subscription.get("foreach")).get("do")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
