"""The ``listen`` task: wait for one, any or all events, correlated and filtered.

Correlation is indexed, not scanned. A subscription is stored under (event type, key) where the
key is ``s:<subject>`` when the filter names a subject or the run has one (Itinera's default: a
run for a person hears that person's events), else ``*``. Filters on other attributes, on
``data`` and ``correlate`` entries are checked when a candidate event is delivered; an event that
does not pass is consumed and ignored. A listen hears every matching event stored after the last
event the run consumed, so an event that arrives while the run is busy is never lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from itinera.engine.execution import Blocked, Execution, SubscriptionSpec
from itinera.engine.node import Evaluable, TaskNode, truthy
from itinera.engine.tasks.flow import TaskList

if TYPE_CHECKING:
    from itinera.engine.plan import Compiler

_META = frozenset(".^$*+?{}[]|()\\")


class EventFilter:
    """One compiled ``eventFilter``."""

    def __init__(self, spec: Mapping[str, Any], ref: str) -> None:
        props: dict[str, Any] = dict(spec.get("with") or {})
        self.type: str = str(props.pop("type", "*"))
        subject = props.pop("subject", None)
        self.subject: str | None = subject if isinstance(subject, str) and not subject.startswith("${") else None
        if subject is not None and self.subject is None:
            props["subject"] = subject
        data = props.pop("data", None)
        self.data = Evaluable(data, always_expression=False) if data is not None else None
        self.attrs: list[tuple[str, Any]] = []
        for name, value in props.items():
            if isinstance(value, str) and value.strip().startswith("${"):
                self.attrs.append((name, Evaluable(value)))
            elif isinstance(value, str) and any(c in _META for c in value):
                self.attrs.append((name, re.compile(value)))
            else:
                self.attrs.append((name, value))
        self.correlate: list[tuple[str, Evaluable, Evaluable | None]] = [
            (cname, Evaluable(c["from"], always_expression=True), Evaluable(c["expect"]) if "expect" in c else None)
            for cname, c in (spec.get("correlate") or {}).items()
        ]
        self.ref = ref
        self.spec = spec

    def describe(self, subject: str | None) -> dict[str, Any]:
        """What this filter waits for, for a person reading ``runs show``."""
        out: dict[str, Any] = {"type": self.type, "key": self.key(subject), "with": self.spec.get("with") or {}}
        if "correlate" in self.spec:
            out["correlate"] = self.spec["correlate"]
        return out

    def key(self, subject: str | None) -> str:
        s = self.subject or subject
        return f"s:{s}" if s else "*"

    def matches(self, node: TaskNode, ex: Execution, f: dict[str, Any], event: dict[str, Any], expected: dict[str, Any]) -> bool:
        if self.type != "*" and event.get("type") != self.type:
            return False
        if self.subject is not None and event.get("subject") != self.subject:
            return False
        for name, want in self.attrs:
            have = event.get(name)
            if isinstance(want, re.Pattern):
                if not isinstance(have, str) or not (have == want.pattern or want.fullmatch(have)):
                    return False
            elif isinstance(want, Evaluable):
                value = node.evaluate(want, event, ex, f)
                if value is not True and value != have:
                    return False
            elif have != want:
                return False
        if self.data is not None:
            data = event.get("data")
            if isinstance(self.data.source, str) and self.data.source.strip().startswith("${"):
                if not truthy(node.evaluate(self.data, data, ex, f)):
                    return False
            elif node.evaluate(self.data, data, ex, f) != data:
                return False
        for cname, from_, expect in self.correlate:
            value = node.evaluate(from_, event, ex, f)
            if expect is not None:
                # An explicit expectation: a constant, or an expression on the task's input.
                if value != node.evaluate(expect, f.get("ti"), ex, f):
                    return False
            elif cname in expected:
                if expected[cname] != value:
                    return False
            else:
                expected[cname] = value
        return True


class Strategy:
    """A compiled ``eventConsumptionStrategy`` (one / any / all, with ``until``)."""

    def __init__(self, spec: Mapping[str, Any], ref: str) -> None:
        if "all" in spec:
            self.mode = "all"
            items = spec["all"]
        elif "any" in spec:
            self.mode = "any"
            items = spec["any"] or [{"with": {}}]
        else:
            self.mode = "one"
            items = [spec["one"]]
        self.filters = [EventFilter(item, f"{ref}/{self.mode}/{i}") for i, item in enumerate(items)]
        until = spec.get("until") if self.mode == "any" else None
        self.until_expr = Evaluable(until, always_expression=True) if isinstance(until, str) else None
        self.until_events = Strategy(until, f"{ref}/until") if isinstance(until, dict) else None


class ListenNode(TaskNode):
    kind = "listen"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        listen = spec["listen"]
        self.strategy = Strategy(listen["to"], f"{ref}/listen/to")
        self.read: str = listen.get("read", "data")
        foreach = spec.get("foreach")
        self.foreach = TaskList(foreach.get("do") or [], f"{ref}/foreach/do", compiler) if foreach else None
        self.item_name: str = (foreach or {}).get("item", "item")
        self.at_name: str = (foreach or {}).get("at", "index")
        fout = (foreach or {}).get("output") or {}
        fexp = (foreach or {}).get("export") or {}
        self.item_as = Evaluable(fout["as"], always_expression=True) if "as" in fout else None
        self.item_export = Evaluable(fexp["as"], always_expression=True) if "as" in fexp else None

    def _read(self, event: dict[str, Any]) -> Any:
        if self.read == "envelope":
            return event
        if self.read == "raw":
            return event.get("data_base64", event.get("data"))
        return event.get("data")

    def _subscribe(self, ex: Execution, strategy: Strategy, tag: str, since: int) -> None:
        for i, flt in enumerate(strategy.filters):
            ex.subscribe(SubscriptionSpec(sub_id=f"{self.ref}#{tag}{i}", event_type=flt.type, key=flt.key(ex.subject), since=since))
        ex.awaiting(
            "event",
            task=self.ref,
            types=sorted({flt.type for flt in strategy.filters}),
            mode=strategy.mode,
            filters=[flt.describe(ex.subject) for flt in strategy.filters],
            after_event=since,
        )

    def _offer(self, ex: Execution, f: dict[str, Any], strategy: Strategy, tag: str, state: dict[str, Any]) -> list[dict[str, Any]]:
        """Consume deliveries for ``strategy``; return the events that matched, in arrival order."""
        matched: list[tuple[int, dict[str, Any]]] = []
        expected: dict[str, Any] = state.setdefault("x", {})
        taken: set[int] = set()
        for i, flt in enumerate(strategy.filters):
            for d in ex.take(f"{self.ref}#{tag}{i}"):
                event = d.payload or {}
                seq = d.event_seq or 0
                if seq <= state.get("seen", 0) or seq in taken:
                    continue
                trial = dict(expected)
                if flt.matches(self, ex, f, event, trial):
                    expected.update(trial)
                    taken.add(seq)
                    matched.append((seq, event))
                    hits = state.setdefault("hit", [])
                    if i not in hits:
                        hits.append(i)
        matched.sort(key=lambda m: m[0])
        if matched:
            state["seen"] = max(state.get("seen", 0), matched[-1][0])
            ex.state["ev"] = max(ex.state.get("ev", 0), state["seen"])
        return [e for _, e in matched]

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        st: dict[str, Any] = f.get("l") or {}
        if not st:
            start = ex.state.get("ev", 0)
            st = f["l"] = {"got": [], "seen": start, "u": {"seen": start}}
        strategy = self.strategy
        done = bool(st.get("done"))
        if not done:
            for event in self._offer(ex, f, strategy, "", st):
                st["got"].append(self._read(event))
                if strategy.mode in ("one",) or (strategy.mode == "any" and strategy.until_expr is None and strategy.until_events is None):
                    done = True
                    break
            if strategy.mode == "all" and len(st.get("hit", [])) == len(strategy.filters):
                done = True
            if not done and strategy.until_expr is not None and st["got"]:
                done = truthy(self.evaluate(strategy.until_expr, st["got"], ex, f))
            if not done and strategy.until_events is not None:
                ust: dict[str, Any] = st["u"]
                if self._offer(ex, f, strategy.until_events, "u", ust):
                    until = strategy.until_events
                    done = until.mode != "all" or len(ust.get("hit", [])) == len(until.filters)
            if done:
                st["done"] = 1
        if self.foreach is not None:
            return self._each(ex, f, st, done)
        if not done:
            self._subscribe(ex, strategy, "", st["seen"])
            if strategy.until_events is not None:
                self._subscribe(ex, strategy.until_events, "u", st["u"]["seen"])
            raise Blocked
        return st["got"]

    def _each(self, ex: Execution, f: dict[str, Any], st: dict[str, Any], done: bool) -> Any:
        assert self.foreach is not None
        k: int = st.get("k", 0)
        outputs: list[Any] = st.setdefault("out", [])
        with ex.scoped(self.item_name, self.at_name) as scope:
            while k < len(st["got"]):
                item = st["got"][k]
                scope[self.item_name] = item
                scope[self.at_name] = k
                out = self.foreach.run(ex, st.setdefault("c", {}), item)
                del st["c"]
                if self.item_as is not None:
                    out = self.evaluate(self.item_as, out, ex, f, out)
                if self.item_export is not None:
                    ex.state["ctx"] = self.evaluate(self.item_export, out, ex, f, out)
                outputs.append(out)
                k += 1
                st["k"] = k
        if not done:
            self._subscribe(ex, self.strategy, "", st["seen"])
            if self.strategy.until_events is not None:
                self._subscribe(ex, self.strategy.until_events, "u", st["u"]["seen"])
            raise Blocked
        return outputs
