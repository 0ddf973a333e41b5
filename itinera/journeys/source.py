"""Definition source text (YAML 1.2, or JSON) to plain JSON values, with every node's position.

The loader works from the parser's event stream, without recursion, so it controls what a
document may become:

* only plain JSON types come out: mappings with string keys, lists, strings, integers,
  finite floats, booleans and null;
* plain scalars resolve by the YAML 1.2 core schema, so ``on``, ``yes`` and ``no`` stay
  strings (``schedule.on`` is a key, not ``True``) and dates stay text;
* duplicate keys, non-string keys, merge keys (``<<``) and tags other than the core ones are
  reported, at the node, and loading goes on so that every problem is found in one pass;
* aliases are expanded into copies, within :data:`MAX_ALIAS_NODES`, and nesting is bounded by
  :data:`MAX_DEPTH`, so a small file cannot turn into a huge or bottomless document.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from itinera.errors import DefinitionError, DefinitionProblem, Location
from itinera.journeys.pointers import Positions, join, split

try:  # libyaml when it is there: the same events, several times faster
    from yaml import CBaseLoader as _FastLoader
except ImportError:  # pragma: no cover - PyYAML wheels ship libyaml on every platform we run
    from yaml import BaseLoader as _FastLoader  # type: ignore[assignment]

MAX_SOURCE_BYTES = 1024 * 1024
"""The largest definition accepted, in bytes of UTF-8 (1 MiB)."""

MAX_DEPTH = 64
"""The deepest nesting of mappings and lists accepted."""

MAX_ALIAS_NODES = 10_000
"""How many nodes all alias expansions together may add to a document."""

_CORE = "tag:yaml.org,2002:"
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what canonical JSON (orjson) represents
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
# libyaml rejects JSON's surrogate-pair escapes ("\ud83d\ude00"); the pure-Python parser reads them.
_LIBYAML_ESCAPE_ERROR = "invalid Unicode character escape code"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, kw_only=True)
class ParsedSource:
    """A parsed definition: its text, plain value, node positions and any problems found."""

    text: str
    value: Any
    positions: Positions
    problems: list[DefinitionProblem]


def parse_source(
    text: str | bytes, *, file: str = "<string>", max_bytes: int = MAX_SOURCE_BYTES
) -> ParsedSource:
    """Parse one YAML (or JSON) document into plain JSON values and node positions.

    Problems that leave a usable value (a duplicate key, a non-string key, an unsupported tag)
    are returned in :attr:`ParsedSource.problems` so that validation can go on and report
    everything at once.

    Raises:
        DefinitionError: the text is too large, not UTF-8, not well-formed YAML, more than one
            document, too deep, or expands through aliases beyond :data:`MAX_ALIAS_NODES`.
    """
    source = _decode(text, file=file, max_bytes=max_bytes)
    builder = _Builder(file)
    try:
        try:
            builder.run(_events(source, _FastLoader))
        except yaml.YAMLError as error:
            if _LIBYAML_ESCAPE_ERROR not in str(error):
                raise
            builder = _Builder(file)
            builder.run(_events(_json_whitespace(source), yaml.BaseLoader))
    except yaml.YAMLError as error:
        builder.fail(_syntax_message(error), _error_position(error, source), builder.pointer())
    except _Fatal:
        pass
    if builder.fatal:
        raise DefinitionError(builder.problems)
    return ParsedSource(
        text=source, value=builder.root, positions=builder.positions(), problems=builder.problems
    )


# --------------------------------------------------------------------------- text


def too_large(size: int, max_bytes: int, file: str) -> DefinitionError:
    """The error for a source of ``size`` bytes over the ``max_bytes`` limit."""
    return _text_error(
        file,
        f"the definition is {size:,} bytes, over the limit of {max_bytes:,} bytes; "
        "split it into smaller journeys or move large data out of the definition",
    )


def _text_error(file: str, message: str, line: int = 1, column: int = 1) -> DefinitionError:
    location = Location(file=file, line=line, column=column, pointer="")
    return DefinitionError([DefinitionProblem(location=location, message=message)])


def _decode(text: str | bytes, *, file: str, max_bytes: int) -> str:
    if isinstance(text, bytes):
        data = text
    else:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as error:
            line, column = _line_column(text, error.start)
            raise _text_error(file, "the text holds a lone surrogate, which is not Unicode", line, column) from None
    if len(data) > max_bytes:
        raise too_large(len(data), max_bytes, file)
    if isinstance(text, str):
        return text.removeprefix("\ufeff")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        prefix = data[: error.start].decode("utf-8", errors="replace")
        line, column = _line_column(prefix, len(prefix))
        message = f"the file is not UTF-8 text (byte 0x{data[error.start]:02x})"
        raise _text_error(file, message, line, column) from None


def _json_whitespace(text: str) -> str:
    """JSON with tabs between tokens, made readable to the pure-Python parser.

    Raw tabs in JSON can only be whitespace (strings hold them escaped), so spaces replace them
    without moving anything; YAML is left as it is.
    """
    return text.replace("\t", " ") if text.lstrip()[:1] in ("{", "[") else text


def _line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _events(text: str, loader_class: type[yaml.BaseLoader | yaml.CBaseLoader]) -> Iterator[yaml.Event]:
    loader = loader_class(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if event is not None:
                yield event
    finally:
        loader.dispose()


def _syntax_message(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        parts = [part for part in (error.context, error.problem) if part]
        return "YAML syntax error: " + (", ".join(parts) if parts else "malformed document")
    if isinstance(error, yaml.reader.ReaderError):
        code = error.character if isinstance(error.character, int) else ord(str(error.character)[:1] or "\0")
        return f"YAML syntax error: {error.reason} (character U+{code:04X})"
    return f"YAML syntax error: {error}"


def _error_position(error: yaml.YAMLError, text: str) -> tuple[int, int]:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            return mark.line + 1, mark.column + 1
    if isinstance(error, yaml.reader.ReaderError):
        # libyaml counts bytes, the pure-Python reader characters; bytes are the safe reading.
        prefix = text.encode("utf-8")[: error.position].decode("utf-8", errors="ignore")
        return _line_column(prefix, len(prefix))
    return 1, 1


# --------------------------------------------------------------------------- events to values


class _Fatal(Exception):
    """Stop building: the problem is already recorded."""


@dataclass
class _Open:
    """A mapping or list whose events are still coming."""

    container: dict[str, Any] | list[Any]
    pointer: str | None  # None inside a complex key, whose positions are not kept
    anchor: str | None
    mark: tuple[int, int]
    first_entry: int
    height: int = 1
    key: str = ""
    has_key: bool = False
    key_lines: dict[str, int] = field(default_factory=dict)
    is_key: bool = False


@dataclass(frozen=True)
class _Anchor:
    value: Any
    entries: list[tuple[str, int, int]]  # positions below the anchored node, relative to it
    nodes: int
    height: int


_KEY = object()  # the node being read is a mapping key


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[DefinitionProblem] = []
        self.fatal = False
        self.root: Any = None
        self.entries: list[tuple[str, int, int]] = []
        self.stack: list[_Open] = []
        self.anchors: dict[str, _Anchor] = {}
        self.alias_nodes = 0
        self.documents = 0
        self.had_duplicates = False

    # ---- reporting

    def report(self, message: str, at: tuple[int, int], pointer: str | None) -> None:
        location = Location(file=self.file, line=at[0], column=at[1], pointer=pointer or "")
        self.problems.append(DefinitionProblem(location=location, message=message))

    def fail(self, message: str, at: tuple[int, int], pointer: str | None) -> None:
        self.report(message, at, pointer)
        self.fatal = True

    def stop(self, message: str, at: tuple[int, int]) -> _Fatal:
        self.fail(message, at, self.pointer())
        return _Fatal()

    def pointer(self) -> str:
        """The pointer of the innermost node being read, for messages about the text."""
        for node in reversed(self.stack):
            if node.pointer is not None:
                return node.pointer
        return ""

    def positions(self) -> Positions:
        table = {pointer: (line, column) for pointer, line, column in self.entries}
        if self.had_duplicates:  # drop the positions of values a later duplicate replaced
            table = {pointer: at for pointer, at in table.items() if _exists(self.root, pointer)}
        return Positions(table)

    # ---- the event loop

    def run(self, events: Iterator[yaml.Event]) -> None:
        for event in events:
            if isinstance(event, yaml.ScalarEvent):
                self.scalar(event)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                self.start(event)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                self.end()
            elif isinstance(event, yaml.AliasEvent):
                self.alias(event)
            elif isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.stop(
                        "a definition is a single YAML document; remove the second '---' "
                        "and what follows, or put it in its own file",
                        _mark(event),
                    )
        if self.documents == 0:
            self.root = None

    def slot(self) -> tuple[str | None, object]:
        """The pointer of the node that starts now, and whether it is a mapping key."""
        if not self.stack:
            return "", None
        top = self.stack[-1]
        if isinstance(top.container, dict) and not top.has_key:
            return None, _KEY
        if top.pointer is None:
            return None, None
        if isinstance(top.container, list):
            return join(top.pointer, len(top.container)), None
        return join(top.pointer, top.key), None

    def begin(self, at: tuple[int, int]) -> tuple[str | None, bool, int]:
        pointer, role = self.slot()
        is_key = role is _KEY
        if pointer is not None and (not self.stack or isinstance(self.stack[-1].container, list)):
            self.entries.append((pointer, *at))
        # A mapping value's own entry is its key's, recorded just before.
        return pointer, is_key, len(self.entries) - 1

    def scalar(self, event: yaml.ScalarEvent) -> None:
        at = _mark(event)
        pointer, is_key, _ = self.begin(at)
        value = self.resolve(event, at, pointer)
        if event.anchor:
            self.anchors[event.anchor] = _Anchor(value=value, entries=[], nodes=1, height=0)
        plain = event.tag is None and event.implicit[0]
        self.deliver(value, at, raw=event.value, plain=plain, is_key=is_key)

    def start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        at = _mark(event)
        is_mapping = isinstance(event, yaml.MappingStartEvent)
        pointer, is_key, first = self.begin(at)
        if len(self.stack) + 1 > MAX_DEPTH:
            raise self.stop(f"the document nests deeper than {MAX_DEPTH} levels", at)
        expected = _CORE + ("map" if is_mapping else "seq")
        if event.tag not in (None, "!", expected):
            self.report(f"unsupported YAML tag {event.tag!r}; only plain JSON values are allowed", at, pointer)
        container: dict[str, Any] | list[Any] = {} if is_mapping else []
        self.stack.append(
            _Open(container=container, pointer=None if is_key else pointer, anchor=event.anchor,
                  mark=at, first_entry=first, is_key=is_key)
        )

    def end(self) -> None:
        node = self.stack.pop()
        if self.stack:
            parent = self.stack[-1]
            parent.height = max(parent.height, node.height + 1)
        if node.anchor:
            entries: list[tuple[str, int, int]] = []
            if node.pointer is not None:
                base = len(node.pointer)
                entries = [(p[base:], line, column) for p, line, column in self.entries[node.first_entry + 1 :]]
            self.anchors[node.anchor] = _Anchor(
                value=node.container, entries=entries, nodes=len(entries) + 1, height=node.height
            )
        self.deliver(node.container, node.mark, raw=None, plain=False, is_key=node.is_key)

    def alias(self, event: yaml.AliasEvent) -> None:
        at = _mark(event)
        name = event.anchor or ""
        anchor = self.anchors.get(name)
        pointer, is_key, _ = self.begin(at)
        if anchor is None:
            if any(node.anchor == name for node in self.stack):
                raise self.stop(f"alias '*{name}' refers to a node that contains it", at)
            self.report(f"unknown alias '*{name}'; define '&{name}' before using it", at, pointer)
            self.deliver(None, at, raw=None, plain=False, is_key=is_key)
            return
        self.alias_nodes += anchor.nodes
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise self.stop(
                f"aliases expand the document by more than {MAX_ALIAS_NODES:,} nodes; "
                "write the repeated parts out or define them once under 'use'",
                at,
            )
        if len(self.stack) + anchor.height > MAX_DEPTH:
            raise self.stop(f"the document nests deeper than {MAX_DEPTH} levels", at)
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, anchor.height + 1)
        if pointer is not None and not is_key:
            self.entries.extend((pointer + rel, line, column) for rel, line, column in anchor.entries)
        self.deliver(copy.deepcopy(anchor.value), at, raw=None, plain=False, is_key=is_key)

    def deliver(self, value: Any, at: tuple[int, int], *, raw: str | None, plain: bool, is_key: bool) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.container, list):
            top.container.append(value)
        elif is_key:
            key = self.key(value, at, raw=raw, plain=plain, parent=top.pointer)
            pointer = None if top.pointer is None else join(top.pointer, key)
            if key in top.key_lines:
                self.had_duplicates = True
                self.report(
                    f"duplicate key '{key}' (first at line {top.key_lines[key]}); a key may appear only once",
                    at,
                    pointer,
                )
            else:
                top.key_lines[key] = at[0]
            top.key, top.has_key = key, True
            if pointer is not None:
                self.entries.append((pointer, *at))
        else:
            top.container[top.key] = value
            top.has_key = False

    def key(self, value: Any, at: tuple[int, int], *, raw: str | None, plain: bool, parent: str | None) -> str:
        if isinstance(value, str):
            if value == "<<" and plain:
                self.report(
                    "YAML merge keys ('<<') are not supported; write the keys out", at, join(parent or "", value)
                )
            return value
        if isinstance(value, (dict, list)):
            self.report("a mapping key must be a string, not a mapping or a list", at, parent)
            return orjson.dumps(value).decode()
        raw = orjson.dumps(value).decode() if raw is None else raw
        self.report(
            f"a mapping key must be a string, but {raw!r} reads as {_kind(value)}; quote it: '{raw}'",
            at,
            join(parent or "", raw),
        )
        return raw

    def resolve(self, event: yaml.ScalarEvent, at: tuple[int, int], pointer: str | None) -> Any:
        text = event.value
        if _SURROGATE.search(text):
            text = self.join_surrogates(text, at, pointer)
        tag = event.tag
        if tag is None:
            return self.plain(text, at, pointer) if event.implicit[0] else text
        if tag in ("!", _CORE + "str"):
            return text
        value = self.plain(text, at, pointer)
        wanted = {_CORE + "int": int, _CORE + "float": float, _CORE + "bool": bool, _CORE + "null": type(None)}
        kind = wanted.get(tag)
        if kind is None:
            self.report(f"unsupported YAML tag {tag!r}; only plain JSON values are allowed", at, pointer)
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not kind:
            self.report(f"{text!r} is not a valid {tag.removeprefix(_CORE)}", at, pointer)
        return value

    def plain(self, text: str, at: tuple[int, int], pointer: str | None) -> Any:
        """A plain scalar's value under the YAML 1.2 core schema."""
        if text in _NULL:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        number: int | None = None
        try:
            if _INT10.fullmatch(text):
                number = int(text)
            elif _INT8.fullmatch(text):
                number = int(text[2:], 8)
            elif _INT16.fullmatch(text):
                number = int(text[2:], 16)
        except ValueError:  # more digits than Python converts
            number = _INT_MAX + 1
        if number is not None:
            if _INT_MIN <= number <= _INT_MAX:
                return number
            shown = text if len(text) <= 40 else text[:37] + "..."
            self.report(f"the integer {shown} is out of range; integers must fit in 64 bits", at, pointer)
            return text
        if _FLOAT.fullmatch(text):
            real = float(text)
            if math.isfinite(real):
                return real
            self.report(f"the number {text} is too large to represent", at, pointer)
            return text
        if _SPECIAL_FLOAT.fullmatch(text):
            self.report(f"{text} is not a JSON number; quote it if you mean the text", at, pointer)
        return text

    def join_surrogates(self, text: str, at: tuple[int, int], pointer: str | None) -> str:
        try:
            return text.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            self.report("the string holds an unpaired surrogate escape, which is not Unicode", at, pointer)
            return text.encode("utf-8", "replace").decode("utf-8")


def _mark(event: yaml.Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def _exists(document: Any, pointer: str) -> bool:
    node = document
    for token in split(pointer):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True
