"""Drive the onboarding journey for many synthetic customers on a virtual clock.

The driver deploys ``examples/onboarding.yaml``, then replays the customers' events in time
order: before each event it lets the engine catch up to the event's time (firing the timeouts
that fall due on the way), then sends the event. Seven days of onboarding pass in seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from itinera.clock import VirtualClock
from itinera.demo.customers import DAY, make_customers, timeline
from itinera.errors import ConfigurationError
from itinera.settings import Settings

if TYPE_CHECKING:
    from itinera.engine import Engine

DEFAULT_DB = "sqlite:///itinera-demo.sqlite"
JOURNEY = Path(__file__).resolve().parents[2] / "examples" / "onboarding.yaml"
PAGE = 1_000
WINDOW = 15 * 60.0

Progress = Callable[[int, int], None]


@dataclass(kw_only=True)
class DemoReport:
    """What the demo did and how long it took."""

    customers: int
    seed: int
    database: str
    tenant: str
    journey: str
    events_sent: int = 0
    events_accepted: int = 0
    events_rejected: int = 0
    runs_started: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    planned: Counter[str] = field(default_factory=Counter)
    reminders: int = 0
    tasks: int = 0
    virtual_days: float = 0.0
    setup_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def runs_per_second(self) -> float:
        """Runs carried from signup to their outcome per second of replay (setup excluded)."""
        replay = self.wall_seconds - self.setup_seconds
        return self.runs_started / replay if replay > 0 else 0.0


def run_demo(
    *,
    customers: int = 2_000,
    db: str = DEFAULT_DB,
    seed: int = 7,
    journey: Path | None = None,
    tenant: str | None = None,
    window: float = WINDOW,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> DemoReport:
    """Run the onboarding demo; return its report.

    Events less than ``window`` seconds apart are sent together, at the time of the first
    (the journey's timeouts are days, so arriving minutes early changes no outcome; it saves
    a round of engine work per event).

    A SQLite database file is deleted and created afresh (and the demo uses the default
    tenant). Any other database is kept and the demo runs in a tenant of its own
    (``demo-<seed>-<time>``), so it never touches other data.

    Raises:
        ConfigurationError: the journey file is missing or the database URL is unusable.
    """
    from itinera.engine import Engine

    path = journey or JOURNEY
    if not path.is_file():
        raise ConfigurationError(f"the demo journey {path} does not exist; run the demo from a source checkout or pass --journey FILE")
    if customers < 1:
        raise ConfigurationError("the demo needs at least one customer")
    settings = settings or Settings()
    if tenant is None:
        tenant = settings.tenant if _recreate(db) else f"demo-{seed}-{int(time.time())}"
    clock = VirtualClock()
    began = clock.now()
    people = make_customers(customers, seed=seed, start=began)
    events = timeline(people)
    report = DemoReport(customers=customers, seed=seed, database=db, tenant=tenant, journey=str(path))
    report.planned.update(c.behaviour for c in people)

    wall = time.perf_counter()
    engine = Engine(db, clock=clock, settings=settings, tenant=tenant)
    try:
        engine.deploy(path)
        report.setup_seconds = time.perf_counter() - wall
        total, done = len(events), 0
        for at, batch in _batches(events, window):
            engine.run_until_idle(follow_timers=True, until=at)
            result = engine.send(batch)
            report.events_accepted += result.accepted
            report.events_rejected += len(result.rejected)
            report.runs_started += len(result.started)
            done += len(batch)
            if progress is not None:
                progress(done, total)
        report.events_sent = total
        engine.run_until_idle(follow_timers=True)
        report.tasks = engine.worker.transitions
        report.virtual_days = (clock.now() - began) / DAY
        _tally(engine, report)
    finally:
        engine.close()
    report.wall_seconds = time.perf_counter() - wall
    return report


def _batches(events: list[tuple[float, dict[str, Any]]], window: float) -> Iterator[tuple[float, list[dict[str, Any]]]]:
    """Consecutive events grouped so that each group spans less than ``window`` seconds."""
    start = 0.0
    batch: list[dict[str, Any]] = []
    for at, event in events:
        if batch and at - start >= window:
            yield start, batch
            batch = []
        if not batch:
            start = at
        batch.append(event)
    if batch:
        yield start, batch


def _recreate(db: str) -> bool:
    """Delete the SQLite file ``db`` names (and its journal); False for other databases."""
    try:
        url = sa.make_url(db)
    except sa.exc.ArgumentError:
        raise ConfigurationError(f"not a database URL: {db!r}") from None
    if not url.drivername.startswith("sqlite"):
        return False
    if url.database in (None, "", ":memory:"):
        return True
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(url.database + suffix).unlink(missing_ok=True)
    return True


def _tally(engine: Engine, report: DemoReport) -> None:
    offset = 0
    while True:
        page = engine.runs(limit=PAGE, offset=offset)
        for run in page:
            report.by_status[run.status] += 1
            out = run.output if isinstance(run.output, dict) else {}
            if run.status == "completed":
                outcome = str(out.get("outcome", "?"))
                if outcome == "activated":
                    outcome = "activated after reminder" if out.get("reminded") else "activated"
                report.by_outcome[outcome] += 1
            if out.get("reminded"):
                report.reminders += 1
        if len(page) < PAGE:
            return
        offset += PAGE
