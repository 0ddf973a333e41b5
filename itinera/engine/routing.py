"""Where an event goes: the runs it wakes and the runs it starts, inside one transaction.

Used for events sent from outside and for events emitted by runs, so a journey's ``emit`` can
wake another journey's ``listen`` on the same store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from itinera.engine.execution import Execution
from itinera.engine.machine import start_state
from itinera.engine.plan import Plan
from itinera.engine.tasks.listen import Strategy
from itinera.store.base import EventRecord, RunRecord, Transaction


def event_keys(subject: str | None) -> list[str]:
    """Correlation keys an event is indexed under (besides "*")."""
    return [f"s:{subject}"] if subject else []


def event_record(tenant: str, envelope: dict[str, Any], received_at: float) -> EventRecord:
    return EventRecord(
        tenant=tenant,
        id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        subject=envelope.get("subject"),
        time=envelope.get("time"),
        envelope=envelope,
        received_at=received_at,
    )


def trigger_matches(plan: Plan, strategy: Strategy, event: dict[str, Any], now: float) -> bool:
    """Whether ``event`` starts a run of ``plan`` (``schedule.on`` with one or any)."""
    ex = Execution(run_id="", tenant="", subject=None, now=now, state={}, secrets={})
    return any(flt.matches(plan.root_task, ex, {}, event, {}) for flt in strategy.filters)


@dataclass(kw_only=True)
class Routed:
    """What routing a batch of events did."""

    stored: list[EventRecord] = field(default_factory=list)
    duplicates: int = 0
    woken: int = 0
    started: list[str] = field(default_factory=list)


def route_events(
    tx: Transaction,
    tenant: str,
    envelopes: Sequence[dict[str, Any]],
    *,
    now: float,
    triggers: Sequence[Plan],
    new_run_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Routed:
    """Store ``envelopes`` (deduplicated), deliver them to listening runs, start triggered runs."""
    routed = Routed()
    if not envelopes:
        return routed
    # Lock before the events get their sequence numbers, so that for any one key, sequence
    # order is commit order (on PostgreSQL a listener would otherwise skip a late commit).
    locks: set[tuple[str, str, str]] = set()
    for e in envelopes:
        for t in (e["type"], "*"):
            for k in ("*", *event_keys(e.get("subject"))):
                locks.add((tenant, t, k))
    tx.lock_keys(sorted(locks))
    records = tx.insert_events([(event_record(tenant, e, now), event_keys(e.get("subject"))) for e in envelopes])
    fresh = [r for r in records if r is not None]
    routed.duplicates = len(records) - len(fresh)
    routed.stored = fresh
    if not fresh:
        return routed
    pairs: set[tuple[str, str]] = set()
    for r in fresh:
        for t in (r.type, "*"):
            for k in ("*", *event_keys(r.subject)):
                pairs.add((t, k))
    subs = tx.find_subscriptions(tenant, sorted(pairs))
    deliveries: list[tuple[str, str, int | None, dict[str, Any] | None]] = []
    if subs:
        by_pair: dict[tuple[str, str], list[Any]] = {}
        for s in subs:
            by_pair.setdefault((s.event_type, s.key), []).append(s)
        for r in fresh:
            for t in (r.type, "*"):
                for k in ("*", *event_keys(r.subject)):
                    for s in by_pair.get((t, k), ()):
                        if r.seq > s.since_seq:
                            deliveries.append((s.run_id, s.sub_id, r.seq, r.envelope))
        tx.add_deliveries(deliveries)
        routed.woken = len({d[0] for d in deliveries})
    runs: list[RunRecord] = []
    for plan in triggers:
        assert plan.trigger is not None
        for r in fresh:
            if trigger_matches(plan, plan.trigger, r.envelope, now):
                run_id = new_run_id()
                runs.append(
                    RunRecord(
                        id=run_id,
                        tenant=tenant,
                        definition_hash=plan.hash,
                        subject=r.subject,
                        status="pending",
                        state=orjson.dumps(start_state([r.envelope], now, event_seq=r.seq)),
                        wake_at=None,
                        ready=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
                routed.started.append(run_id)
    if runs:
        tx.insert_runs(runs)
    return routed
