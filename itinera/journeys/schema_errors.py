"""Turning jsonschema's errors into messages an author can act on.

The DSL schema is built from ``oneOf`` alternatives (an endpoint is one of three forms, a
duration one of three, a run one of four processes...). When a value fails, jsonschema reports
every alternative's failure, which mostly says "this is not a mapping" about a string. The
:class:`Explainer` picks the alternative the author meant, by the shape of the value (its type,
then the keys it has), and reports only that alternative's errors, at the pointer of the
offending node; values that fit no alternative get one message naming the forms expected. It
also drops the "unevaluated property" noise a failed alternative leaves behind. (Tasks and
calls are routed to their alternative before validation, by :mod:`itinera.journeys.schema`.)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, cast

from jsonschema.protocols import Validator
from jsonschema.exceptions import ValidationError

from itinera.journeys.pointers import from_path, join, last, split

_JSON_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_LEAF_VALIDATORS = frozenset({"pattern", "format", "const", "enum", "not", "minLength", "maxLength"})
_EXPRESSION = "a runtime expression '${ ... }'"
_PATTERN_MESSAGES = {
    "WorkflowNamespace": "expected letters, digits and '-' (at most 63, not starting or ending with '-')",
    "WorkflowName": "expected letters, digits and '-' (at most 63, not starting or ending with '-')",
    "WorkflowDSL": "expected a semantic version such as '1.0.3'",
    "WorkflowVersion": "expected a semantic version such as '1.0.0'",
    "RuntimeExpression": f"expected {_EXPRESSION}",
    "LiteralUriTemplate": "expected an absolute URI such as 'https://api.example.com/pets/{id}'",
    "LiteralUri": "expected an absolute URI such as 'https://api.example.com/pets'",
    "WithGRPCServiceHost": "expected a host name",
}


def describe(value: Any) -> str:
    """A short description of a JSON value for messages: ``'five minutes'``, ``a list``."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    return "a list" if isinstance(value, list) else "a mapping"


def quoted(names: Iterable[str], conjunction: str = "or") -> str:
    """``'a', 'b' or 'c'``."""
    items = [f"'{name}'" for name in names]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


class SchemaFacts:
    """What the explainer needs to know about the schema a validator uses, computed once."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        defs = root["$defs"]
        self.duration = defs["duration"]
        self.endpoint = defs["endpoint"]
        self.uri_template = defs["uriTemplate"]
        self.runtime_expression = defs["runtimeExpression"]
        self._declared: dict[int, frozenset[str]] = {}

    def resolve(self, schema: Any) -> dict[str, Any]:
        """Follow a local ``$ref`` (the DSL schema only has ``#/$defs/...`` ones)."""
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        target: Any = self.root
        for token in split(ref[1:]):
            target = target[token]
        return target if isinstance(target, dict) else {}

    def declared(self, schema: Any) -> frozenset[str]:
        """Every property name ``schema`` or any of its parts (alternatives included) declares."""
        cached = self._declared.get(id(schema))
        if cached is not None:
            return cached
        names: set[str] = set()
        if isinstance(schema, dict):
            names.update(schema.get("properties", {}))
            if "$ref" in schema:
                names |= self.declared(self.resolve(schema))
            for keyword in ("allOf", "oneOf", "anyOf"):
                for part in schema.get(keyword, []):
                    names |= self.declared(part)
            for keyword in ("then", "else"):
                if keyword in schema:
                    names |= self.declared(schema[keyword])
        result = frozenset(names)
        self._declared[id(schema)] = result  # the schema lives as long as these facts
        return result


class Explainer:
    """Explain the errors of one validation of ``document``, or of the node at ``base`` in it."""

    def __init__(
        self, facts: SchemaFacts, validator: Validator, document: Any, *, base: str = ""
    ) -> None:
        self.facts = facts
        self.validator = validator
        self.document = document
        self.base = base

    def pointer(self, error: ValidationError) -> str:
        """The pointer of the node an error is about, in the whole document."""
        return self.base + from_path(error.absolute_path)

    def explain(self, errors: list[ValidationError]) -> list[tuple[str, str]]:
        """``(pointer, message)`` for each problem the errors reveal."""
        found: list[tuple[str, str]] = []
        for error in errors:
            if error.validator in ("unevaluatedProperties", "additionalProperties"):
                found.extend(self.unexpected(error, errors))
            elif error.validator in ("oneOf", "anyOf"):
                found.extend(self.choice(error))
            else:
                found.extend(self.leaf(error))
        return found

    # ------------------------------------------------------------------ alternatives

    def choice(self, error: ValidationError) -> list[tuple[str, str]]:
        pointer = self.pointer(error)
        if not error.context:
            return [(pointer, self.ambiguous(error))]
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        shaped = {
            index: subs
            for index, subs in branches.items()
            if not any(sub.validator == "type" and not sub.relative_path for sub in subs)
        }
        if not shaped or all(all(_shallow(sub) for sub in subs) for subs in shaped.values()):
            return [(pointer, self.expected(error))]
        complete = {
            index: subs
            for index, subs in shaped.items()
            if not any(sub.validator == "required" and not sub.relative_path for sub in subs)
        }
        if complete:
            # The alternative whose errors go deepest is the one the author was writing.
            deepest = max(complete.values(), key=lambda subs: max(len(sub.absolute_path) for sub in subs))
            return self.explain(deepest)
        return [(pointer, self.missing_one_of(error.instance, shaped))]

    def expected(self, error: ValidationError) -> str:
        """What a value failing every alternative of ``error.schema`` should have been."""
        got = f"; got {describe(error.instance)}"
        if error.schema is self.facts.duration:
            return (
                "expected a duration: ISO 8601 text such as 'PT30S' or 'P1DT2H', a mapping of days, hours, "
                f"minutes, seconds and milliseconds, or {_EXPRESSION}{got}"
            )
        if error.schema is self.facts.endpoint:
            return (
                "expected an endpoint: an absolute URI such as 'https://api.example.com/pets/{id}', "
                f"{_EXPRESSION}, or a mapping with 'uri'{got}"
            )
        if error.schema is self.facts.uri_template:
            return f"expected an absolute URI such as 'https://api.example.com/pets/{{id}}'{got}"
        types: list[str] = []
        forms: list[str] = []
        branches = cast(dict[str, Any], error.schema).get(str(error.validator), [])
        for branch in branches:
            resolved = self.facts.resolve(branch)
            if resolved is self.facts.uri_template:
                forms.append("an absolute URI such as 'https://example.com/events'")
            elif resolved is self.facts.runtime_expression:
                forms.append(_EXPRESSION)
            for kind in _as_list(resolved.get("type")):
                if _JSON_TYPES.get(kind, kind) not in types:
                    types.append(_JSON_TYPES.get(kind, kind))
        if forms and len(forms) == len(branches):
            # The value has the right type but none of the right shapes: name the shapes.
            return f"expected {' or '.join(forms)}{got}"
        if types:
            return f"expected {' or '.join(types)}{got}"
        return "does not match any of the allowed forms" + got

    def ambiguous(self, error: ValidationError) -> str:
        """Why a value matching several alternatives of a ``oneOf`` is wrong."""
        instance = error.instance
        if isinstance(instance, dict):
            keys = []
            for branch in cast(dict[str, Any], error.schema).get("oneOf", []):
                required = self.facts.resolve(branch).get("required", [])
                if required and all(key in instance for key in required):
                    keys.append(required[0])
            if len(keys) > 1:
                return f"{quoted(keys, 'and')} exclude each other; keep only one"
        return f"{describe(instance)} matches more than one of the allowed forms"

    def missing_one_of(self, instance: Any, branches: dict[int, list[ValidationError]]) -> str:
        options: list[list[str]] = []
        for subs in branches.values():
            names = [name for sub in subs if sub.validator == "required" and not sub.relative_path
                     for name in cast(Any, sub.validator_value) if name not in instance]
            names = list(dict.fromkeys(names))
            if names and names not in options:
                options.append(names)
        fewest = min(len(names) for names in options) if options else 0
        choices = [" and ".join(f"'{name}'" for name in names) for names in options if len(names) == fewest]
        if not choices:
            return "does not match any of the allowed forms"
        if len(choices) == 1:
            return f"missing required property {choices[0]}"
        return f"missing one of {', '.join(choices[:-1])} or {choices[-1]}"

    # ------------------------------------------------------------------ unexpected properties

    def unexpected(self, error: ValidationError, siblings: list[ValidationError]) -> list[tuple[str, str]]:
        pointer = self.pointer(error)
        instance = error.instance
        if not isinstance(instance, dict):
            return []
        if any(
            other.validator in ("oneOf", "anyOf") and self.pointer(other) == pointer
            for other in siblings
        ):
            return []  # the failed alternative's own explanation covers these properties
        declared = self.facts.declared(error.schema)
        extras = [key for key in instance if key not in declared]
        if not extras:
            if any(other is not error and _within(self.pointer(other), pointer) for other in siblings):
                return []  # declared properties whose values failed: reported where they failed
            allowed = self.declared_here(error.schema, instance)
            # Properties that exist in another form of this value, not in the one written here.
            misplaced = [key for key in instance if key not in allowed]
            if not misplaced:
                return [(pointer, error.message)]
            return [(join(pointer, key), f"property '{key}' is not allowed here") for key in misplaced]
        problems = []
        for key in extras:
            guess = difflib.get_close_matches(key, sorted(declared), n=1, cutoff=0.75)
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            problems.append((join(pointer, key), f"unexpected property '{key}'{hint}"))
        return problems

    def declared_here(self, schema: Any, instance: dict[str, Any]) -> set[str]:
        """The property names that parts of ``schema`` which ``instance`` satisfies declare."""
        if not isinstance(schema, dict):
            return set()
        names = set(schema.get("properties", {}))
        if "$ref" in schema:
            names |= self.declared_here(self.facts.resolve(schema), instance)
        for part in schema.get("allOf", []):
            names |= self.declared_here(part, instance)
        for keyword in ("oneOf", "anyOf"):
            for part in schema.get(keyword, []):
                if self.validator.evolve(schema=part).is_valid(instance):
                    names |= self.declared_here(part, instance)
        return names

    # ------------------------------------------------------------------ single errors

    def leaf(self, error: ValidationError) -> list[tuple[str, str]]:
        pointer = self.pointer(error)
        # The stubs type these as unions with an 'unset' marker; a raised error has them all.
        kind, value, instance = error.validator, cast(Any, error.validator_value), cast(Any, error.instance)
        schema = error.schema if isinstance(error.schema, dict) else {}
        if kind is None:  # a `false` schema: the property may not be there at all
            return self.forbidden(error, pointer)
        if kind == "required":
            missing = [name for name in value if isinstance(instance, dict) and name not in instance]
            return [(pointer, f"missing required property '{name}'") for name in missing]
        if kind == "type" and schema.get("title") == "TaskItem":
            expected = "a task list item maps a task's name to the task (like '- greet: ...')"
            return [(pointer, f"{expected}; got {describe(instance)}")]
        if kind == "type":
            wanted = " or ".join(_JSON_TYPES.get(name, name) for name in _as_list(value))
            return [(pointer, f"expected {wanted}; got {describe(instance)}")]
        if kind == "enum":
            return [(pointer, f"expected one of {quoted(map(str, value))}; got {describe(instance)}")]
        if kind == "const":
            return [(pointer, f"expected {value!r}; got {describe(instance)}")]
        if kind == "pattern":
            message = _PATTERN_MESSAGES.get(str(schema.get("title")), f"expected text matching {value}")
            return [(pointer, f"{message}; got {describe(instance)}")]
        if kind == "maxProperties" and value == 1 and isinstance(instance, dict):
            first, *others = instance
            return [
                (
                    join(pointer, other),
                    f"'{other}' shares a list item with '{first}', but an item holds exactly one entry; "
                    f"start '{other}' on its own line with '- '",
                )
                for other in others
            ]
        if kind == "minProperties":
            noun = "property" if value == 1 else "properties"
            got = "an empty mapping" if not instance else f"{len(instance)}"
            return [(pointer, f"expected at least {value} {noun}; got {got}")]
        if kind == "maxProperties":
            return [(pointer, f"expected at most {value} properties")]
        if kind == "minItems":
            return [(pointer, f"expected at least {value} item{'s' if value != 1 else ''}")]
        if kind == "minLength":
            return [(pointer, "expected a non-empty string")]
        if kind == "minimum":
            return [(pointer, f"expected a value of at least {value}; got {describe(instance)}")]
        if kind == "maximum":
            return [(pointer, f"expected a value of at most {value}; got {describe(instance)}")]
        if kind == "not" and isinstance(value, dict) and "required" in value and isinstance(instance, dict):
            return [
                (join(pointer, name), f"property '{name}' is not allowed here")
                for name in value["required"]
                if name in instance
            ]
        return [(pointer, error.message)]

    def forbidden(self, error: ValidationError, pointer: str) -> list[tuple[str, str]]:
        # jsonschema leaves the property's name off the path of a `false` schema's error; find it.
        node = self.node(pointer)
        if node is not error.instance and isinstance(node, dict):
            keys = [key for key, value in node.items() if value is error.instance]
            if len(keys) == 1:
                pointer = join(pointer, keys[0])
        name = last(pointer)
        return [(pointer, f"property '{name}' is not allowed here" if name else "this value is not allowed here")]

    # ------------------------------------------------------------------ helpers

    def node(self, pointer: str) -> Any:
        target = self.document
        for token in split(pointer):
            if isinstance(target, dict):
                target = target.get(token)
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return None
        return target


def _shallow(error: ValidationError) -> bool:
    """Whether ``error`` only says the value itself has the wrong form (not a part of it)."""
    if error.relative_path:
        return False
    if error.validator in ("oneOf", "anyOf"):
        return all(_shallow(sub) or sub.validator == "type" for sub in error.context or [])
    return error.validator in _LEAF_VALIDATORS


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def _within(pointer: str, ancestor: str) -> bool:
    return pointer == ancestor or pointer.startswith(ancestor + "/")
