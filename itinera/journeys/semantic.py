"""Checks the JSON Schema cannot express, run once a definition conforms to it.

* the DSL version is 1.0.x, and ``evaluate`` (in the prose, not the schema) asks for jq;
* ``then`` targets, ``call`` targets and names of ``use`` entries exist (:mod:`.references`);
* durations parse (the schema's ISO 8601 pattern lets years, months and misplaced fractions by);
* runtime expressions compile: every ``${ ... }`` string, and the fields that are always
  expressions (``if``, ``when``, ``for.in``...) even when written without ``${ }``;
* names that become expression variables (``for.each``, ``catch.as``...) are identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Set as AbstractSet
from typing import Any

from itinera.journeys.durations import parse_duration
from itinera.journeys.expression_syntax import syntax_error, unwrap
from itinera.journeys.pointers import join
from itinera.journeys.references import (
    BUILT_IN_CALLS,
    check_authentications,
    check_task,
    check_task_names,
    check_timeout,
)
from itinera.journeys.tasks import TaskSite, tasks

Found = Iterator[tuple[str, str]]

SUPPORTED_DSL = (1, 0)
_VERSION = re.compile(r"(\d+)\.(\d+)\.")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def semantic_problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    """``(pointer, message)`` for each semantic problem of a schema-valid ``document``."""
    use: dict[str, Any] = document.get("use") or {}
    sites = list(tasks(document))
    found: list[tuple[str, str]] = []
    found.extend(_dsl(document))
    found.extend(_evaluate(document.get("evaluate")))
    for site in sites:
        found.extend(check_task_names(site))
        found.extend(check_task(site, use))
    found.extend(check_timeout("/timeout", document.get("timeout"), use))
    found.extend(check_authentications(document, _data_zones(sites)))
    for pointer, value in _durations(document, sites):
        found.extend(_duration(pointer, value))
    always = dict(_expression_fields(document, sites))
    for pointer, value in always.items():
        found.extend(_expression(pointer, value, bare=True))
    for pointer, value in _strings(document, skip=_not_expressions(sites) | always.keys()):
        found.extend(_expression(pointer, value, bare=False))
    found.extend(_variables(sites))
    return found


def _dsl(document: dict[str, Any]) -> Found:
    dsl = document["document"]["dsl"]
    match = _VERSION.match(dsl)
    if match is None or (int(match[1]), int(match[2])) != SUPPORTED_DSL:
        yield "/document/dsl", f"Itinera runs DSL 1.0.x definitions; this one declares {dsl!r}"


def _evaluate(evaluate: Any) -> Found:
    # `evaluate` is in the DSL prose but not in its schema, so it is checked here.
    if evaluate is None:
        return
    if not isinstance(evaluate, dict):
        yield "/evaluate", "expected a mapping with 'language' and 'mode'"
        return
    for key in evaluate:
        if key not in ("language", "mode"):
            yield join("/evaluate", key), f"unexpected property '{key}'"
    if evaluate.get("language", "jq") != "jq":
        yield "/evaluate/language", f"Itinera evaluates runtime expressions in jq only; got {evaluate['language']!r}"
    if evaluate.get("mode", "strict") not in ("strict", "loose"):
        yield "/evaluate/mode", f"expected 'strict' or 'loose'; got {evaluate['mode']!r}"


# --------------------------------------------------------------------------- durations


def _duration(pointer: str, value: Any) -> Found:
    if isinstance(value, str) and unwrap(value) is not None:
        return  # a runtime expression, checked with the others
    try:
        parse_duration(value)
    except ValueError as error:
        yield pointer, str(error)


def _durations(document: dict[str, Any], sites: list[TaskSite]) -> Found:
    """Every place the schema expects a duration, with its value."""
    schedule = document.get("schedule") or {}
    for key in ("every", "after"):
        if key in schedule:
            yield join("/schedule", key), schedule[key]
    yield from _timeout("/timeout", document.get("timeout"))
    use = document.get("use") or {}
    for name, timeout in (use.get("timeouts") or {}).items():
        yield from _timeout(join("/use/timeouts", name), timeout)
    for name, retry in (use.get("retries") or {}).items():
        yield from _retry(join("/use/retries", name), retry)
    for site in sites:
        body, pointer = site.body, site.pointer
        yield from _timeout(join(pointer, "timeout"), body.get("timeout"))
        arguments = body.get("with") or {}
        if site.kind == "wait":
            yield join(pointer, "wait"), body["wait"]
        elif site.kind == "try":
            yield from _retry(join(pointer, "catch", "retry"), (body.get("catch") or {}).get("retry"))
        elif site.kind == "run":
            lifetime = ((body["run"].get("container") or {}).get("lifetime")) or {}
            if "after" in lifetime:
                yield join(pointer, "run", "container", "lifetime", "after"), lifetime["after"]
        elif site.kind == "call" and body["call"] == "mcp" and "timeout" in arguments:
            yield join(pointer, "with", "timeout"), arguments["timeout"]
        elif site.kind == "call" and body["call"] == "asyncapi":
            consume = (arguments.get("subscription") or {}).get("consume") or {}
            if "for" in consume:
                yield join(pointer, "with", "subscription", "consume", "for"), consume["for"]


def _timeout(pointer: str, timeout: Any) -> Found:
    if isinstance(timeout, dict) and "after" in timeout:
        yield join(pointer, "after"), timeout["after"]


def _retry(pointer: str, retry: Any) -> Found:
    if not isinstance(retry, dict):
        return
    if "delay" in retry:
        yield join(pointer, "delay"), retry["delay"]
    limit = retry.get("limit") or {}
    if "duration" in limit:
        yield join(pointer, "limit", "duration"), limit["duration"]
    attempt = limit.get("attempt") or {}
    if "duration" in attempt:
        yield join(pointer, "limit", "attempt", "duration"), attempt["duration"]
    jitter = retry.get("jitter") or {}
    for key in ("from", "to"):
        if key in jitter:
            yield join(pointer, "jitter", key), jitter[key]


# --------------------------------------------------------------------------- expressions


def _expression(pointer: str, text: Any, *, bare: bool) -> Found:
    if not isinstance(text, str):
        return
    inner = unwrap(text)
    if inner is None and not bare:
        return
    error = syntax_error(text if inner is None else inner)
    if error is not None:
        yield pointer, f"invalid runtime expression: {error}"


def _expression_fields(document: dict[str, Any], sites: list[TaskSite]) -> Found:
    """The fields that always hold a runtime expression, with or without ``${ }``."""
    yield from _filters("", document)
    yield from _strategy("/schedule/on", (document.get("schedule") or {}).get("on"))
    use = document.get("use") or {}
    for name, retry in (use.get("retries") or {}).items():
        yield from _fields(join("/use/retries", name), retry, "when", "exceptWhen")
    for index, item in enumerate(use.get("extensions") or []):
        for name, extension in item.items():
            yield from _fields(join("/use/extensions", index, name), extension, "when")
    for site in sites:
        body, pointer = site.body, site.pointer
        yield from _fields(pointer, body, "if")
        yield from _filters(pointer, body)
        if site.kind == "for":
            yield from _fields(join(pointer, "for"), body["for"], "in")
            yield from _fields(pointer, body, "while")
        elif site.kind == "switch":
            for index, case in enumerate(body["switch"]):
                for name, rule in case.items():
                    yield from _fields(join(pointer, "switch", index, name), rule, "when")
        elif site.kind == "try":
            catch = body.get("catch") or {}
            yield from _fields(join(pointer, "catch"), catch, "when", "exceptWhen")
            yield from _fields(join(pointer, "catch", "retry"), catch.get("retry"), "when", "exceptWhen")
        elif site.kind == "listen":
            yield from _strategy(join(pointer, "listen", "to"), body["listen"].get("to"))
            yield from _filters(join(pointer, "foreach"), body.get("foreach"))
        elif site.kind == "call" and body["call"] == "asyncapi":
            subscription = (body.get("with") or {}).get("subscription") or {}
            at = join(pointer, "with", "subscription")
            yield from _fields(at, subscription, "filter")
            yield from _fields(join(at, "consume"), subscription.get("consume"), "while", "until")
            yield from _filters(join(at, "foreach"), subscription.get("foreach"))


def _fields(pointer: str, node: Any, *keys: str) -> Found:
    if isinstance(node, dict):
        for key in keys:
            if isinstance(node.get(key), str):
                yield join(pointer, key), node[key]


def _filters(pointer: str, node: Any) -> Found:
    """``input.from``, ``output.as`` and ``export.as`` given as text."""
    if isinstance(node, dict):
        yield from _fields(join(pointer, "input"), node.get("input"), "from")
        yield from _fields(join(pointer, "output"), node.get("output"), "as")
        yield from _fields(join(pointer, "export"), node.get("export"), "as")


def _strategy(pointer: str, strategy: Any) -> Found:
    if not isinstance(strategy, dict):
        return
    until = strategy.get("until")
    if isinstance(until, str):
        yield join(pointer, "until"), until
    else:
        yield from _strategy(join(pointer, "until"), until)
    for key in ("all", "any"):
        for index, event_filter in enumerate(strategy.get(key) or []):
            yield from _correlations(join(pointer, key, index), event_filter)
    yield from _correlations(join(pointer, "one"), strategy.get("one"))


def _correlations(pointer: str, event_filter: Any) -> Found:
    if isinstance(event_filter, dict):
        for name, correlation in (event_filter.get("correlate") or {}).items():
            yield from _fields(join(pointer, "correlate", name), correlation, "from")


def _strings(node: Any, *, skip: AbstractSet[str], pointer: str = "") -> Found:
    stack: list[tuple[str, Any]] = [(pointer, node)]
    while stack:
        here, value = stack.pop()
        if here in skip:
            continue
        if isinstance(value, str):
            yield here, value
        elif isinstance(value, dict):
            stack.extend((join(here, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((join(here, index), item) for index, item in enumerate(value))


def _not_expressions(sites: list[TaskSite]) -> set[str]:
    """Where strings are documentation or code, never evaluated: skipped by the ``${`` scan."""
    skip = {"/document"}
    for site in sites:
        skip.add(join(site.pointer, "metadata"))
        for key in ("input", "output", "export"):
            skip.add(join(site.pointer, key, "schema"))
        if site.kind == "run":
            skip.add(join(site.pointer, "run", "script", "code"))
    skip.update(join("", key, "schema") for key in ("input", "output"))
    return skip


def _data_zones(sites: list[TaskSite]) -> set[str]:
    """Where keys are the author's data, not DSL properties: skipped when looking for policies."""
    zones = {"/document"}
    for site in sites:
        body, pointer = site.body, site.pointer
        zones.add(join(pointer, "metadata"))
        if site.kind == "set":
            zones.add(join(pointer, "set"))
        elif site.kind == "emit":
            zones.add(join(pointer, "emit", "event", "with", "data"))
        elif site.kind == "run":
            zones.add(join(pointer, "run", "workflow", "input"))
        elif site.kind == "call" and body["call"] not in BUILT_IN_CALLS:
            zones.add(join(pointer, "with"))
        elif site.kind == "call" and body["call"] == "http":
            zones.add(join(pointer, "with", "body"))
    return zones


def _variables(sites: list[TaskSite]) -> Found:
    """Names that become ``$variables`` in expressions must be identifiers."""
    for site in sites:
        body, pointer = site.body, site.pointer
        named: list[tuple[str, Any]] = []
        if site.kind == "for":
            named += [(join(pointer, "for", key), body["for"].get(key)) for key in ("each", "at")]
        elif site.kind == "try":
            named.append((join(pointer, "catch", "as"), (body.get("catch") or {}).get("as")))
        elif site.kind == "listen":
            foreach = body.get("foreach") or {}
            named += [(join(pointer, "foreach", key), foreach.get(key)) for key in ("item", "at")]
        elif site.kind == "call" and body["call"] == "asyncapi":
            foreach = ((body.get("with") or {}).get("subscription") or {}).get("foreach") or {}
            at = join(pointer, "with", "subscription", "foreach")
            named += [(join(at, key), foreach.get(key)) for key in ("item", "at")]
        for at, name in named:
            if isinstance(name, str) and not _IDENTIFIER.fullmatch(name):
                yield at, (
                    f"{name!r} cannot name an expression variable; use letters, digits and '_', "
                    "not starting with a digit"
                )
