"""The engine: the Python API that the command line, the demo and embedding apps use."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from itinera.clock import Clock, SystemClock, iso
from itinera.engine.machine import start_state
from itinera.engine.plan import Plan, compile_plan
from itinera.engine.routing import route_events
from itinera.engine.worker import Worker
from itinera.errors import DefinitionError, DefinitionProblem, EventError, MisuseError, NotFoundError
from itinera.events.cloudevent import validate_event
from itinera.journeys import Definition, load_definition, load_file
from itinera.settings import Settings
from itinera.store import open_store
from itinera.store.base import DefinitionRecord, Deployment, HistoryEntry, RunRecord, Store


_DEPLOYMENTS_TTL = 1.0  # seconds


@dataclass(frozen=True, kw_only=True)
class Deployed:
    """The result of deploying a definition."""

    hash: str
    namespace: str
    name: str
    version: str


@dataclass(frozen=True, kw_only=True)
class SendResult:
    """The result of sending events: what was stored, what was a duplicate, what was rejected."""

    accepted: int
    duplicates: int
    rejected: list[EventError] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    woken: int = 0


@dataclass(frozen=True, kw_only=True)
class RunView:
    """A run as a person (or an auditor) sees it."""

    id: str
    tenant: str
    journey: str
    version: str
    definition_hash: str
    subject: str | None
    status: str
    created_at: str
    updated_at: str
    input: Any
    output: Any
    error: dict[str, Any] | None
    context: Any
    waits: list[dict[str, Any]]
    wake_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Engine:
    """Deploy journeys, send events, start and advance runs, inspect them.

    Args:
        store: a :class:`Store` or a database URL (default: the ``database_url`` setting).
        clock: where time comes from; a :class:`~itinera.clock.VirtualClock` makes months pass in
            seconds.
        settings: runtime settings (default: from the environment).
        tenant: the tenant this engine acts for.
        migrate: bring the database schema up to date on open (otherwise check it is current).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        clock: Clock | None = None,
        settings: Settings | None = None,
        tenant: str | None = None,
        migrate: bool = True,
    ) -> None:
        from itinera import __version__

        self.settings = settings or Settings()
        self.store: Store = open_store(store or self.settings.database_url, migrate=migrate) if isinstance(store, str) or store is None else store
        self.clock: Clock = clock or SystemClock()
        self.tenant = tenant or self.settings.tenant
        self.version = __version__
        self.traces: dict[str, list[dict[str, Any]]] = {}
        self._plans: dict[str, Plan] = {}
        self._deployments: dict[str, tuple[float, dict[str, Deployment]]] = {}
        self._secrets = self.settings.secrets()
        self._worker: Worker | None = None
        self._dispatcher: Any = None

    # -- definitions ------------------------------------------------------------------------

    def load(self, source: Definition | str | os.PathLike[str]) -> Definition:
        """Load and validate a definition from a Definition, a path, or YAML/JSON text."""
        if isinstance(source, Definition):
            return source
        if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and Path(source).suffix in (".yaml", ".yml", ".json")):
            return load_file(source)
        return load_definition(source)

    def _compile(self, definition: Definition) -> Plan:
        plan = self._plans.get(definition.hash)
        if plan is None:
            try:
                plan = compile_plan(definition.document, definition.hash, event_sink=self.settings.event_sink)
            except ValueError as err:
                text = str(err)
                pointer, _, message = text.partition(": ")
                if not pointer.startswith("/"):
                    pointer, message = "", text
                raise DefinitionError([DefinitionProblem(location=definition.locate(pointer), message=message)]) from None
            self._plans[definition.hash] = plan
        return plan

    def register(self, source: Definition | str | os.PathLike[str]) -> Deployed:
        """Store a definition version (by content hash) without making it the active one."""
        definition = self.load(source)
        plan = self._compile(definition)
        with self.store.transaction() as tx:
            tx.save_definition(self._record(definition))
        return Deployed(hash=definition.hash, namespace=plan.namespace, name=plan.name, version=plan.version)

    def deploy(self, source: Definition | str | os.PathLike[str]) -> Deployed:
        """Store a definition version and make it the active version of its journey.

        Runs already started keep the version they started on. A definition with
        ``schedule.every`` or ``schedule.cron`` gets a schedule run that starts the journey at
        each tick while this version stays deployed.
        """
        definition = self.load(source)
        plan = self._compile(definition)
        if plan.trigger is not None and plan.trigger.mode == "all":
            problem = DefinitionProblem(location=definition.locate("/schedule/on/all"), message="schedule.on with 'all' is not supported yet; use 'one' or 'any'")
            raise DefinitionError([problem])
        now = self.clock.now()
        with self.store.transaction() as tx:
            tx.save_definition(self._record(definition))
            tx.deploy(Deployment(tenant=self.tenant, namespace=plan.namespace, name=plan.name, hash=definition.hash, deployed_at=now))
            if plan.every is not None or plan.cron is not None:
                first = self.next_tick(plan, now)
                tx.insert_runs([self._new_run(plan, {"tick": first, "ev": 0}, subject=None, now=now, ready=False, wake_at=first, status="waiting")])
        self._deployments.pop(self.tenant, None)
        return Deployed(hash=definition.hash, namespace=plan.namespace, name=plan.name, version=plan.version)

    def _record(self, definition: Definition) -> DefinitionRecord:
        return DefinitionRecord(
            tenant=self.tenant,
            hash=definition.hash,
            namespace=definition.namespace,
            name=definition.name,
            version=definition.version,
            source=definition.source,
            document=definition.document,
            created_at=self.clock.now(),
        )

    def plan(self, tenant: str, hash: str) -> Plan:
        """The compiled plan of a stored definition version (compiled once per process)."""
        plan = self._plans.get(hash)
        if plan is None:
            with self.store.read() as tx:
                record = tx.get_definition(tenant, hash)
            if record is None:
                raise NotFoundError(f"no definition with hash {hash}")
            plan = compile_plan(record.document, hash, event_sink=self.settings.event_sink)
            self._plans[hash] = plan
        return plan

    def deployments(self, tenant: str | None = None) -> dict[str, Deployment]:
        """The active version of each journey of ``tenant``, keyed ``namespace/name``.

        Cached for a second of wall time, so a long-running worker sees a deployment made by
        another process (the CLI, another node) without reading it for every batch.
        """
        tenant = tenant or self.tenant
        entry = self._deployments.get(tenant)
        if entry is None or time.monotonic() - entry[0] > _DEPLOYMENTS_TTL:
            with self.store.read() as tx:
                entry = (time.monotonic(), {f"{d.namespace}/{d.name}": d for d in tx.deployments(tenant)})
            self._deployments[tenant] = entry
        return entry[1]

    def is_deployed(self, tenant: str, hash: str) -> bool:
        self._deployments.pop(tenant, None)
        return any(d.hash == hash for d in self.deployments(tenant).values())

    def triggers(self, tenant: str) -> list[Plan]:
        """Plans of the deployed journeys that start on events (``schedule.on``)."""
        plans = [self.plan(tenant, d.hash) for d in self.deployments(tenant).values()]
        return [p for p in plans if p.trigger is not None]

    def next_tick(self, plan: Plan, after: float) -> float:
        if plan.every is not None:
            return after + max(plan.every, 0.001)
        from croniter import croniter

        assert plan.cron is not None
        base = datetime.fromtimestamp(after, UTC)
        return float(croniter(plan.cron, base).get_next(float))

    def secrets_for(self, plan: Plan) -> dict[str, Any]:
        """The secrets a definition declared in ``use.secrets`` (and only those)."""
        return {name: self._secrets[name] for name in plan.secrets if name in self._secrets}

    # -- runs --------------------------------------------------------------------------------

    def _resolve(self, journey: str) -> Plan:
        deployments = self.deployments()
        d = deployments.get(journey) or next((d for k, d in deployments.items() if k.split("/", 1)[1] == journey), None)
        try:
            return self.plan(self.tenant, d.hash if d is not None else journey)
        except NotFoundError:
            known = ", ".join(sorted(deployments)) or "none"
            raise NotFoundError(f"no deployed journey '{journey}' and no stored definition with that hash (deployed: {known})") from None

    def _new_run(self, plan: Plan, state: dict[str, Any], *, subject: str | None, now: float, ready: bool = True, wake_at: float | None = None, status: str = "pending", run_id: str | None = None) -> RunRecord:
        return RunRecord(
            id=run_id or str(uuid.uuid4()),
            tenant=self.tenant,
            definition_hash=plan.hash,
            subject=subject,
            status=status,  # type: ignore[arg-type]  # callers pass a RunStatus
            state=orjson.dumps(state),
            wake_at=wake_at,
            ready=ready,
            created_at=now,
            updated_at=now,
        )

    def start(self, journey: str, input: Any = None, *, subject: str | None = None, run_id: str | None = None) -> str:
        """Start a run of ``journey`` (``namespace/name``, ``name``, or a definition hash)."""
        plan = self._resolve(journey)
        raw = {} if input is None else input
        size = len(orjson.dumps(raw))
        if size > self.settings.max_input_bytes:
            raise MisuseError(f"run input is {size} bytes, over the {self.settings.max_input_bytes}-byte limit (setting ITINERA_MAX_INPUT_BYTES)")
        now = self.clock.now()
        with self.store.transaction() as tx:
            state = start_state(raw, now, event_seq=tx.max_event_seq())
            record = self._new_run(plan, state, subject=subject, now=now, run_id=run_id)
            tx.insert_runs([record])
        return record.id

    def start_many(self, journey: str, items: Iterable[tuple[Any, str | None]]) -> list[str]:
        """Start one run per ``(input, subject)`` pair, all in one transaction."""
        plan = self._resolve(journey)
        now = self.clock.now()
        with self.store.transaction() as tx:
            seq = tx.max_event_seq()
            records = [self._new_run(plan, start_state({} if i is None else i, now, event_seq=seq), subject=s, now=now) for i, s in items]
            tx.insert_runs(records)
        return [r.id for r in records]

    def send(self, events: Iterable[Any] | Mapping[str, Any]) -> SendResult:
        """Ingest CloudEvents: validate each, store it once, wake listeners, start triggered runs.

        A malformed event is rejected (see ``rejected``) and changes nothing; the valid ones in
        the same call are still taken.
        """
        items = [events] if isinstance(events, Mapping) else list(events)
        good: list[dict[str, Any]] = []
        rejected: list[EventError] = []
        for i, e in enumerate(items):
            try:
                good.append(validate_event(e, max_bytes=self.settings.max_event_bytes, index=i))
            except EventError as err:
                rejected.append(err)
        if not good:
            return SendResult(accepted=0, duplicates=0, rejected=rejected)
        now = self.clock.now()
        triggers = self.triggers(self.tenant)
        with self.store.transaction() as tx:
            routed = route_events(tx, self.tenant, good, now=now, triggers=triggers)
        return SendResult(accepted=len(routed.stored), duplicates=routed.duplicates, rejected=rejected, started=routed.started, woken=routed.woken)

    # -- advancing ------------------------------------------------------------------------------

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            self._worker = Worker(self)
        return self._worker

    @property
    def dispatcher(self) -> Any:
        if self._dispatcher is None:
            from itinera.connectors import default_dispatcher

            self._dispatcher = default_dispatcher(self.store, clock=self.clock, worker=self.worker.name, lease_seconds=self.settings.lease_seconds)
        return self._dispatcher

    def tick(self) -> int:
        """One batch of run advances and one of outbox deliveries; returns the work done."""
        return self.worker.tick() + int(self.dispatcher.dispatch_once())

    def run_until_idle(self, *, follow_timers: bool = False, until: float | None = None, max_ticks: int | None = None) -> int:
        """Advance runs and deliver side effects until nothing is left to do now.

        With ``follow_timers`` (and a virtual clock) the clock jumps to the next timer whenever
        the runs are idle, up to ``until`` (epoch seconds), so journeys spanning months finish in
        seconds.
        """
        done = 0
        ticks = 0
        while max_ticks is None or ticks < max_ticks:
            ticks += 1
            n = self.tick()
            done += n
            if n:
                continue
            if not follow_timers:
                break
            with self.store.transaction() as tx:
                nxt = tx.next_wake_at()
                retry = tx.next_outbox_attempt()
            if retry is not None and (nxt is None or retry < nxt):
                nxt = retry  # an outbox retry is a timer too: the run waits on its result
            if nxt is None or (until is not None and nxt > until):
                if until is not None and hasattr(self.clock, "set"):
                    self.clock.set(until)
                break
            if nxt <= self.clock.now() or not hasattr(self.clock, "set"):
                break  # due work this process could not take (another worker's lease holds it)
            self.clock.set(nxt)
        return done

    # -- inspection and control --------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunView:
        with self.store.read() as tx:
            run = tx.get_run(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        return self._view(run)

    def runs(self, *, status: str | None = None, limit: int = 100, offset: int = 0) -> list[RunView]:
        with self.store.read() as tx:
            records = tx.list_runs(tenant=self.tenant, status=status, limit=limit, offset=offset)
        return [self._view(r) for r in records]

    def history(self, run_id: str) -> list[HistoryEntry]:
        with self.store.read() as tx:
            return tx.history(run_id)

    def _view(self, run: RunRecord) -> RunView:
        state = orjson.loads(run.state)
        try:
            plan = self.plan(run.tenant, run.definition_hash)
            journey, version = f"{plan.namespace}/{plan.name}", plan.version
        except NotFoundError:
            journey, version = "?", "?"
        waits = []
        if run.status == "waiting":
            waits = [
                {**w, "since": iso(run.updated_at), **({"until": iso(w["until"])} if isinstance(w.get("until"), float | int) else {})}
                for w in state.get("waits", [])
            ]
            if "tick" in state:
                waits = [{"kind": "schedule", "until": iso(state["tick"]), "since": iso(run.updated_at)}]
        wf = state.get("wf", {})
        return RunView(
            id=run.id,
            tenant=run.tenant,
            journey=journey,
            version=version,
            definition_hash=run.definition_hash,
            subject=run.subject,
            status=run.status,
            created_at=iso(run.created_at),
            updated_at=iso(run.updated_at),
            input=wf.get("in"),
            output=state.get("out"),
            error=state.get("err"),
            context=state.get("ctx"),
            waits=waits,
            wake_at=iso(run.wake_at) if run.wake_at is not None else None,
        )

    def _control(self, run_id: str, allowed: Sequence[str], change: str) -> RunView:
        now = self.clock.now()
        with self.store.transaction() as tx:
            run = tx.get_run(run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}")
            if run.status not in allowed:
                raise MisuseError(f"run {run_id} is {run.status}; only a run that is {' or '.join(allowed)} can be {change}")
            if change == "cancelled":
                run.status = "cancelled"
                run.ready = False
                run.wake_at = None
                tx.replace_subscriptions([run.id], [])
            elif change == "suspended":
                run.status = "suspended"
            else:
                run.status = "waiting"
                run.ready = True
            run.updated_at = now
            if tx.save_runs([run], worker=None):
                raise MisuseError(f"run {run_id} changed while it was being {change}; try again")
            tx.append_history([HistoryEntry(run_id=run.id, at=now, kind=f"run.{change}", data={})])
        return self.get_run(run_id)

    def cancel(self, run_id: str) -> RunView:
        """Cancel a run that has not finished; it will never advance again."""
        return self._control(run_id, ("pending", "running", "waiting", "suspended"), "cancelled")

    def suspend(self, run_id: str) -> RunView:
        """Pause a run: it keeps its waits but is not advanced until resumed."""
        return self._control(run_id, ("pending", "running", "waiting"), "suspended")

    def resume(self, run_id: str) -> RunView:
        """Resume a suspended run; timers that passed meanwhile fire at once."""
        return self._control(run_id, ("suspended",), "resumed")

    def close(self) -> None:
        """Release the dispatcher's connections and the store."""
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None
        self.store.close()


