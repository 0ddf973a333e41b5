"""A worker process for the crash test: tick an engine until no work is left, then exit.

    python -m tests.support.crashworker --db URL --seconds N [--name NAME] [--wait-go]

It drives the engine exactly as ``itinera worker`` does (``Engine.tick()`` in a loop, real clock)
but with one-second leases and batches of 50, so that the runs of a worker the test SIGKILLs
are taken over quickly by the next one. It prints ``ready`` on stdout once the engine is open
and warm (the test starts its kill timer when it starts working), progress lines on stderr, and a last ``done ...`` line on
stdout when every run has finished and no side effect is pending. It exits 0 then, or 3 when
``--seconds`` ran out first. With ``--wait-go`` it reads one line from stdin after ``ready``
before it starts: the test starts the next doomed worker while the current one works, so the
interpreter's start-up does not eat into the time between kills.

"Nothing left" is decided from the database, not from an idle tick: a killed worker's claimed
runs and outbox rows stay leased until their leases expire, and a tick returns 0 meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import time

from itinera.engine.engine import Engine
from itinera.settings import Settings

ACTIVE = ("pending", "running", "waiting")
LEASE_SECONDS = 1.0
BATCH_SIZE = 50


def work_left(engine: Engine) -> tuple[int, int]:
    """How many runs are still active, and how many outbox rows are still pending."""
    with engine.store.transaction() as tx:
        counts = tx.count_runs()
        pending = len(tx.outbox(status="pending"))
    return sum(counts.get(status, 0) for status in ACTIVE), pending


def warm_up(engine: Engine) -> None:
    """Do the first-use work a long-running worker has behind it: compile the deployed plans,
    build the dispatcher and its HTTP client, open a database connection. A kill then lands in
    steady-state work rather than in start-up."""
    for deployment in engine.deployments().values():
        engine.plan(deployment.tenant, deployment.hash)
    assert engine.dispatcher is not None
    work_left(engine)


def work_until_done(engine: Engine, name: str, *, deadline: float) -> int:
    """Tick until no run is active and no side effect is pending (0), or until ``deadline`` (3)."""
    started = time.monotonic()
    ticks = work = 0
    while time.monotonic() < deadline:
        n = engine.tick()
        ticks += 1
        work += n
        if n:
            print(f"{name}: tick {ticks} did {n} (total {work})", file=sys.stderr, flush=True)
            continue
        active, pending = work_left(engine)
        if not active and not pending:
            print(f"done ticks={ticks} work={work} seconds={time.monotonic() - started:.2f}", flush=True)
            return 0
        print(f"{name}: idle, {active} runs active, {pending} outbox rows pending", file=sys.stderr, flush=True)
        time.sleep(engine.settings.worker_idle_sleep)
    active, pending = work_left(engine)
    print(f"timeout ticks={ticks} work={work} active={active} pending={pending}", flush=True)
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", required=True, help="the store's database URL")
    parser.add_argument("--seconds", type=float, required=True, help="give up (exit 3) after this long")
    parser.add_argument("--name", default="crashworker", help="a label for the progress lines")
    parser.add_argument("--wait-go", action="store_true", help="after 'ready', wait for a line on stdin")
    args = parser.parse_args(argv)

    settings = Settings(lease_seconds=LEASE_SECONDS, batch_size=BATCH_SIZE)
    engine = Engine(args.db, settings=settings, migrate=False)
    try:
        warm_up(engine)
        print("ready", flush=True)
        if args.wait_go and not sys.stdin.readline():
            return 4  # the test went away without starting us
        return work_until_done(engine, args.name, deadline=time.monotonic() + args.seconds)
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
