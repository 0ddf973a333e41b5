"""The execution context of one advance of one run: what a task may read and what it produces.

A run advances by re-descending its frame tree from the root (see ``node.py``). While it
descends, tasks read the clock, variables and deliveries from here, and record what the run
needs from the outside world: timers (``wake``), event subscriptions (``subscribe``), side
effects (``effect``), emitted events (``emit``) and history. The worker turns those records into
rows committed in one transaction with the run's new state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from itinera.clock import iso
from itinera.store.base import Delivery, OutboxRow


_UNSET = object()


class Blocked(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """Raised by a task that cannot go on until something happens (timer, event, result)."""


class EndWorkflow(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """The ``end`` flow directive: finish the whole run with ``output``."""

    def __init__(self, output: Any) -> None:
        self.output = output
        super().__init__("end")


@dataclass(frozen=True, kw_only=True, slots=True)
class SubscriptionSpec:
    """What a listening task waits for, as the store indexes it."""

    sub_id: str
    event_type: str
    key: str
    since: int  # only events stored after this sequence number count


@dataclass(kw_only=True, slots=True)
class Execution:
    """Everything one advance of one run reads and writes (see module docstring)."""

    run_id: str
    tenant: str
    subject: str | None
    now: float
    state: dict[str, Any]  # the run's persisted state; tasks keep frames inside it
    definition: Any = None  # the parsed definition, for ``$workflow.definition``
    runtime_version: str = ""
    secrets: dict[str, Any]
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    consumed: list[int] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    trace: list[dict[str, Any]] | None = None
    waits: list[dict[str, Any]] = field(default_factory=list)  # what the run waits for, for humans
    scope: dict[str, Any] = field(default_factory=dict)  # for/catch/foreach variables in force
    steps: int = 0

    # -- descriptors (built only when an expression reads them) -----------------------------

    def workflow_descriptor(self) -> dict[str, Any]:
        wf = self.state.get("wf", {})
        t0 = wf.get("t0", self.now)
        return {
            "id": self.run_id,
            "definition": self.definition,
            "input": wf.get("in"),
            "startedAt": {"iso8601": iso(t0), "epoch": {"seconds": int(t0), "milliseconds": int(t0 * 1000)}},
        }

    def runtime_descriptor(self) -> dict[str, Any]:
        return {"name": "itinera", "version": self.runtime_version, "metadata": {"tenant": self.tenant}}

    # -- time and identity -------------------------------------------------------------

    def next_sequence(self) -> int:
        """A per-run counter, deterministic under re-execution, for idempotency keys."""
        n: int = self.state.get("n", 0) + 1
        self.state["n"] = n
        return n

    def effect_key(self, ref: str) -> str:
        """The idempotency key of the side effect the task at ``ref`` is about to record."""
        return f"{self.run_id}:{ref}:{self.next_sequence()}"

    def seed(self, *parts: object) -> int:
        """A deterministic 64-bit seed for randomness inside orchestration (e.g. jitter)."""
        text = "\x1f".join([self.run_id, *map(str, parts)])
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    @contextmanager
    def scoped(self, *names: str) -> Iterator[dict[str, Any]]:
        """Variables (``$item``, ``$index``, ``$error``...) set inside the block, restored after."""
        saved = {n: self.scope.get(n, _UNSET) for n in names}
        try:
            yield self.scope
        finally:
            for n, v in saved.items():
                if v is _UNSET:
                    self.scope.pop(n, None)
                else:
                    self.scope[n] = v

    # -- what the run needs -------------------------------------------------------------

    def mark(self) -> tuple[int, int, int]:
        """Remember what is registered now, to forget what an abandoned subtree adds later."""
        return len(self.wakes), len(self.subscriptions), len(self.waits)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        del self.wakes[mark[0] :]
        del self.subscriptions[mark[1] :]
        del self.waits[mark[2] :]

    def wake(self, at: float, why: str = "timer") -> None:
        self.wakes.append(at)
        self.waits.append({"kind": why, "until": at})

    def subscribe(self, spec: SubscriptionSpec) -> None:
        self.subscriptions.append(spec)

    def awaiting(self, kind: str, **what: Any) -> None:
        """Describe a wait that has no timer or subscription of its own (e.g. an outbox result)."""
        self.waits.append({"kind": kind, **what})

    def take(self, sub_id: str) -> list[Delivery]:
        """Deliveries addressed to ``sub_id``; they are consumed when the advance commits."""
        items = self.deliveries.pop(sub_id, None)
        if not items:
            return []
        self.consumed.extend(d.id for d in items)
        return items

    def effect(self, *, key: str, kind: str, payload: dict[str, Any]) -> None:
        self.outbox.append(
            OutboxRow(
                key=key,
                tenant=self.tenant,
                run_id=self.run_id,
                kind=kind,
                payload=payload,
                created_at=self.now,
                next_attempt_at=self.now,
            )
        )

    def emit(self, event: dict[str, Any]) -> None:
        self.emitted.append(event)

    def record(self, kind: str, **data: Any) -> None:
        self.history.append((kind, data))

    def traced(self, event: str, task: str, ref: str) -> None:
        if self.trace is not None:
            self.trace.append({"event": event, "task": task, "ref": ref, "at": iso(self.now)})
