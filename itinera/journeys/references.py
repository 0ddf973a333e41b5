"""Checking that names a definition refers to exist: tasks, functions, catalogs, ``use`` entries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from itinera.journeys.pointers import join, last, parent
from itinera.journeys.tasks import TaskSite

FLOW_DIRECTIVES = ("continue", "exit", "end")
BUILT_IN_CALLS = ("http", "grpc", "openapi", "asyncapi", "a2a", "mcp")
BUILT_IN_CATALOG = "itinera"
"""Itinera's own block catalog: ``call: name:version@itinera`` needs no ``use.catalogs`` entry."""

AUTH_SCHEMES = ("basic", "bearer", "certificate", "digest", "oauth2", "oidc")
_CATALOG_FUNCTION = re.compile(r"(?P<name>[^\s:@]+):(?P<version>[^\s:@]+)@(?P<catalog>[^\s:@]+)")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")

Found = Iterator[tuple[str, str]]


def _names(declared: dict[str, Any] | list[Any] | None) -> list[str]:
    return [str(name) for name in declared] if declared else []


def _unknown(kind: str, name: str, section: str, declared: list[str]) -> str:
    if not declared:
        return f"unknown {kind} '{name}': nothing is declared under {section}"
    return f"unknown {kind} '{name}'; expected one of those declared under {section}: {', '.join(declared)}"


def check_task(site: TaskSite, use: dict[str, Any]) -> Found:
    """Flow targets, call targets and named references of one task."""
    body = site.body
    if isinstance(body.get("then"), str):
        yield from _flow(join(site.pointer, "then"), body["then"], site)
    if site.kind == "switch":
        for index, case in enumerate(body.get("switch") or []):
            for case_name, rule in case.items():
                if isinstance(rule, dict) and isinstance(rule.get("then"), str):
                    yield from _flow(join(site.pointer, "switch", index, case_name, "then"), rule["then"], site)
    if site.kind == "call" and isinstance(body.get("call"), str):
        message = _call_problem(body["call"], use)
        if message:
            yield join(site.pointer, "call"), message
    if site.kind == "raise":
        error = (body.get("raise") or {}).get("error")
        if isinstance(error, str) and error not in (use.get("errors") or {}):
            declared = _names(use.get("errors"))
            yield join(site.pointer, "raise", "error"), _unknown("error", error, "use.errors", declared)
    if site.kind == "try":
        retry = (body.get("catch") or {}).get("retry")
        if isinstance(retry, str) and retry not in (use.get("retries") or {}):
            yield join(site.pointer, "catch", "retry"), _unknown(
                "retry policy", retry, "use.retries", _names(use.get("retries"))
            )
    yield from check_timeout(join(site.pointer, "timeout"), body.get("timeout"), use)


def check_timeout(pointer: str, timeout: Any, use: dict[str, Any]) -> Found:
    if isinstance(timeout, str) and timeout not in (use.get("timeouts") or {}):
        yield pointer, _unknown("timeout", timeout, "use.timeouts", _names(use.get("timeouts")))


def check_task_names(site: TaskSite) -> Found:
    """A task's name must be unique in its list and must not read as a flow directive."""
    if site.scope is None:
        return  # a function: called by name, never a flow target
    if site.name in FLOW_DIRECTIVES:
        yield site.pointer, f"a task cannot be named '{site.name}': 'then: {site.name}' would be ambiguous"
    index = int(last(parent(site.pointer)))
    first = site.scope.names.index(site.name)
    if first < index:
        yield site.pointer, (
            f"task name '{site.name}' is already used by item {first} of this list; "
            "names must be unique within a list so that 'then' can refer to them"
        )


def _flow(pointer: str, target: str, site: TaskSite) -> Found:
    if target in FLOW_DIRECTIVES:
        return
    if site.scope is None:
        yield pointer, (
            f"unknown task '{target}'; a function is not in a task list, so expected 'continue', 'exit' or 'end'"
        )
    elif target not in site.scope.names:
        yield pointer, (
            f"unknown task '{target}'; expected 'continue', 'exit', 'end' or one of the tasks in this list: "
            f"{', '.join(dict.fromkeys(site.scope.names))}"
        )


def _call_problem(target: str, use: dict[str, Any]) -> str | None:
    if target in BUILT_IN_CALLS or target in (use.get("functions") or {}):
        return None
    if _URI.fullmatch(target):
        return None  # a function definition published at a URI (DSL "custom functions")
    catalogs = _names(use.get("catalogs"))
    if "@" in target:
        match = _CATALOG_FUNCTION.fullmatch(target)
        if match is None:
            return f"malformed catalog function '{target}'; expected 'name:version@catalog'"
        catalog = match["catalog"]
        if catalog == BUILT_IN_CATALOG or catalog in catalogs:
            return None
        declared = f"declared: {', '.join(catalogs)}" if catalogs else "none is declared"
        return (
            f"unknown catalog '{catalog}' in '{target}'; declare it under use.catalogs ({declared}) "
            f"or use the built-in catalog '{BUILT_IN_CATALOG}'"
        )
    functions = _names(use.get("functions"))
    declared = f"declared: {', '.join(functions)}" if functions else "none is declared"
    return (
        f"unknown function '{target}'; expected {', '.join(BUILT_IN_CALLS)}, a function under "
        f"use.functions ({declared}), or a catalog function 'name:version@catalog'"
    )


def check_authentications(document: dict[str, Any], opaque: set[str]) -> Found:
    """Named authentication policies and the secrets of secret-based ones must be declared."""
    use = document.get("use") or {}
    policies = _names(use.get("authentications"))
    secrets = _names(use.get("secrets"))
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        pointer, node = stack.pop()
        if pointer in opaque:
            continue
        if isinstance(node, list):
            stack.extend((join(pointer, index), item) for index, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            here = join(pointer, key)
            if key == "authentication" and last(pointer) != "client":  # oauth2 client.authentication is a method
                name = value if isinstance(value, str) else None
                if isinstance(value, dict) and set(value) == {"use"} and isinstance(value["use"], str):
                    name, here = value["use"], join(here, "use")
                if name is not None and name not in policies:
                    yield here, _unknown("authentication policy", name, "use.authentications", policies)
            if key in AUTH_SCHEMES and _is_policy(pointer) and isinstance(value, dict):
                secret = value.get("use")
                if isinstance(secret, str) and secret not in secrets:
                    yield join(here, "use"), _unknown("secret", secret, "use.secrets", secrets)
            stack.append((here, value))


def _is_policy(pointer: str) -> bool:
    """Whether the mapping at ``pointer`` is an authentication policy."""
    return last(pointer) == "authentication" or parent(pointer) == "/use/authentications"
