"""The worker: claim a batch of runs that have work, advance each, commit the batch at once.

One batch is two short transactions: a claim (lease the runs, read what was delivered to them)
and a commit (their new states, history, subscriptions, outbox rows and emitted events). The
advancing in between is pure (see ``machine.py``), so a process that dies at any instant leaves
either the old states (leases expire, another worker advances the runs again and produces the
same effects under the same idempotency keys) or the new ones.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import orjson

from itinera.engine.machine import advance, start_state
from itinera.engine.routing import route_events
from itinera.errors import ErrorType, Problem
from itinera.store.base import Delivery, HistoryEntry, OutboxRow, RunRecord, Subscription

if TYPE_CHECKING:
    from itinera.engine.engine import Engine

logger = logging.getLogger("itinera.worker")


class Worker:
    """Advances runs of one store in batches."""

    def __init__(self, engine: Engine, *, name: str | None = None, batch_size: int | None = None) -> None:
        self.engine = engine
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch_size = batch_size or engine.settings.batch_size
        self.advanced = 0
        self.transitions = 0

    def tick(self) -> int:
        """Advance one batch of runs that have work now; return how many were advanced."""
        engine = self.engine
        store = engine.store
        now = engine.clock.now()
        wall = time.time()
        with store.transaction() as tx:
            runs = tx.claim_runs(worker=self.name, now=now, wall_now=wall, lease_until=wall + engine.settings.lease_seconds, limit=self.batch_size)
            if not runs:
                return 0
            delivered = tx.deliveries([r.id for r in runs])
        by_run: dict[str, list[Delivery]] = defaultdict(list)
        for d in delivered:
            by_run[d.run_id].append(d)

        history: list[HistoryEntry] = []
        outbox: list[OutboxRow] = []
        emitted: list[tuple[str, dict[str, Any]]] = []
        consumed: list[int] = []
        changed_ids: list[str] = []
        subs: list[Subscription] = []
        restarts: list[RunRecord] = []
        for run in runs:
            state = orjson.loads(run.state)
            if "tick" in state:
                self._tick_schedule(run, state, now, restarts)
                continue
            try:
                plan = engine.plan(run.tenant, run.definition_hash)
            except Exception as err:  # a stored definition that no longer compiles: fault, keep going
                self._fault(run, state, now, history, f"the definition cannot be used: {err}", ErrorType.CONFIGURATION)
                changed_ids.append(run.id)
                continue
            trace = engine.traces.get(run.id)
            try:
                result = advance(
                    plan,
                    run_id=run.id,
                    tenant=run.tenant,
                    subject=run.subject,
                    state=state,
                    deliveries=by_run.get(run.id, []),
                    now=now,
                    secrets=engine.secrets_for(plan),
                    runtime_version=engine.version,
                    trace=trace,
                )
            except Exception as err:  # a defect must fault one run, never poison its whole batch
                logger.exception("run %s faulted on an internal error", run.id)
                self._fault(run, orjson.loads(run.state), now, history, f"internal error: {type(err).__name__}: {err}")
                changed_ids.append(run.id)  # drop its subscriptions
                continue
            ex = result.ex
            if result.status == "waiting" and (run.status != "waiting" or result.subscriptions_changed):
                ex.record("run.waiting", waits=ex.waits)
            self.transitions += ex.steps
            run.status = result.status
            run.state = orjson.dumps(state)
            run.wake_at = result.wake_at
            run.ready = False
            run.updated_at = now
            consumed.extend(ex.consumed)
            outbox.extend(ex.outbox)
            emitted.extend((run.tenant, e) for e in ex.emitted)
            for kind, data in ex.history:
                history.append(HistoryEntry(run_id=run.id, at=now, kind=kind, data=data))
            if result.status == "waiting" and not ex.waits:
                # Nothing can ever wake this run: say so instead of sleeping forever.
                self._fault(run, state, now, history, "the run waits for nothing")
            if result.subscriptions_changed:
                changed_ids.append(run.id)
                subs.extend(
                    Subscription(tenant=run.tenant, run_id=run.id, sub_id=s.sub_id, event_type=s.event_type, key=s.key, since_seq=s.since)
                    for s in result.subscriptions
                )
            if result.status == "completed" and plan.after is not None:
                restarts.append(self._restart(run, plan.after, state, now))
        self.advanced += len(runs)
        self._commit(runs, history, outbox, emitted, consumed, changed_ids, subs, restarts, now)
        return len(runs)

    def _commit(
        self,
        runs: list[RunRecord],
        history: list[HistoryEntry],
        outbox: list[OutboxRow],
        emitted: list[tuple[str, dict[str, Any]]],
        consumed: list[int],
        changed_ids: list[str],
        subs: list[Subscription],
        restarts: list[RunRecord],
        now: float,
    ) -> None:
        engine = self.engine
        # Read what emitted events may trigger before the write transaction: reading it inside
        # would open a second transaction, which SQLite's single writer would wait on forever.
        triggers = {tenant: engine.triggers(tenant) for tenant in {t for t, _ in emitted}}
        with engine.store.transaction() as tx:
            if consumed:
                tx.consume_deliveries(consumed)
            stale = set(tx.save_runs(runs, worker=self.name))
            tx.refresh_ready([r.id for r in runs if r.id not in stale and r.status == "waiting"])
            if stale:  # our lease expired and another worker advanced these: drop our effects
                history = [h for h in history if h.run_id not in stale]
                outbox = [o for o in outbox if o.run_id not in stale]
                changed_ids = [r for r in changed_ids if r not in stale]
                subs = [s for s in subs if s.run_id not in stale]
                emitted = []  # emitted events carry deterministic ids; the other worker emits them
            if history:
                tx.append_history(history)
            if outbox:
                tx.add_outbox(outbox)
            if changed_ids:
                tx.lock_keys(sorted({(s.tenant, s.event_type, s.key) for s in subs}))
                tx.replace_subscriptions(changed_ids, subs)
                if subs:
                    # An event stored before this commit, after the run decided to listen, still counts.
                    late = tx.events_for(subs)
                    if late:
                        tx.add_deliveries([(s.run_id, s.sub_id, e.seq, e.envelope) for s, e in late])
            if restarts:
                tx.insert_runs(restarts)
            if emitted:
                by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for tenant, event in emitted:
                    by_tenant[tenant].append(event)
                for tenant, events in by_tenant.items():
                    route_events(tx, tenant, events, now=now, triggers=triggers[tenant])

    def _fault(self, run: RunRecord, state: dict[str, Any], now: float, history: list[HistoryEntry], detail: str, type_: str = ErrorType.RUNTIME) -> None:
        problem = Problem(type=type_, status=500, title="Run faulted", detail=detail).to_dict()
        state["err"] = problem
        state.pop("root", None)
        state.pop("subs", None)
        run.status = "faulted"
        run.state = orjson.dumps(state)
        run.ready = False
        run.wake_at = None
        run.updated_at = now
        history.append(HistoryEntry(run_id=run.id, at=now, kind="run.faulted", data={"error": problem}))

    def _restart(self, run: RunRecord, after: float, state: dict[str, Any], now: float) -> RunRecord:
        return RunRecord(
            id=str(uuid.uuid4()),
            tenant=run.tenant,
            definition_hash=run.definition_hash,
            subject=run.subject,
            status="pending",
            state=orjson.dumps(start_state(state["wf"]["in"], now + after, event_seq=state.get("ev", 0))),
            wake_at=now + after,
            ready=False,
            created_at=now,
            updated_at=now,
        )

    def _tick_schedule(self, run: RunRecord, state: dict[str, Any], now: float, new_runs: list[RunRecord]) -> None:
        """A schedule run: start the journey at each tick while its version is the deployed one."""
        engine = self.engine
        run.ready = False
        run.updated_at = now
        if not engine.is_deployed(run.tenant, run.definition_hash):
            run.status = "cancelled"
            run.wake_at = None
            return
        plan = engine.plan(run.tenant, run.definition_hash)
        while state["tick"] <= now:
            new_runs.append(
                RunRecord(
                    id=str(uuid.uuid4()),
                    tenant=run.tenant,
                    definition_hash=run.definition_hash,
                    subject=None,
                    status="pending",
                    state=orjson.dumps(start_state({}, now, event_seq=state.get("ev", 0))),
                    wake_at=None,
                    ready=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            state["tick"] = engine.next_tick(plan, state["tick"])
        run.state = orjson.dumps(state)
        run.wake_at = state["tick"]
        run.status = "waiting"

