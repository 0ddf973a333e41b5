"""Engine throughput: a reference 5-task journey for N subjects on SQLite, against raw sqlite3.

    python benchmarks/engine.py [--subjects 10000] [--batch 500] [--profile]

Each run: set -> switch -> call a catalog block -> emit -> listen for an event. The benchmark
starts N runs, advances them until they all wait, sends each subject's event, and advances them
to completion; every step is durable (committed to the SQLite file). It prints completed runs/s
and task transitions/s, then the same clock's figure for raw sqlite3 inserting 5 rows a run in
batches (the floor of what any SQLite-backed engine can do), and the ratio.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from peers import run_peers

JOURNEY = """
document: {dsl: '1.0.3', namespace: bench, name: reference, version: '1.0.0'}
do:
  - profile:
      set:
        customer: ${ .customer }
        plan: ${ .plan }
        score: ${ .score }
  - route:
      switch:
        - premium: {when: '.plan == "premium"', then: greet}
        - default: {then: greet}
  - greet:
      call: log:1.0.0@itinera
      with:
        message: welcome
        level: debug
  - announce:
      emit:
        event:
          with:
            source: itinera://bench
            type: com.itinera.bench.welcomed
            data: {customer: '${ .logged }'}
  - activation:
      listen:
        to:
          one:
            with: {type: com.itinera.bench.activated}
"""

# Used only when a peer is not installed (`pip install -e '.[bench]'`): figures measured earlier on a
# machine like this one for five durable steps with no wait, one run at a time -- an easier
# cycle than ours, which also waits for an event.
MEASURED = {
    "dbos": ("DBOS 3.4, 5 steps, no wait", 175.0),
    "dbos-async": ("DBOS 3.4, 5 steps, no wait", 175.0),
    "langgraph": ("LangGraph 1.2 + SqliteSaver, 5 steps, no wait", 186.0),
}


def bench_itinera(subjects: int, batch: int, workdir: Path, db_url: str | None = None) -> tuple[float, float, int]:
    import logging

    from itinera import Engine, Settings, VirtualClock

    logging.getLogger("itinera.journey").setLevel(logging.WARNING)
    engine = Engine(db_url or f"sqlite:///{workdir / 'bench.db'}", clock=VirtualClock(), settings=Settings(batch_size=batch))
    deployed = engine.deploy(JOURNEY)
    started = time.perf_counter()
    chunk = 1000
    plans = ("premium", "basic")
    for lo in range(0, subjects, chunk):
        engine.start_many(deployed.hash, (({"customer": f"c{i}", "plan": plans[i % 2], "score": i % 100}, f"c{i}") for i in range(lo, min(lo + chunk, subjects))))
    engine.run_until_idle()
    events = [
        {"specversion": "1.0", "id": f"a{i}", "source": "/bench", "type": "com.itinera.bench.activated", "subject": f"c{i}", "data": {"ok": True}}
        for i in range(subjects)
    ]
    for lo in range(0, subjects, chunk):
        engine.send(events[lo : lo + chunk])
    engine.run_until_idle()
    elapsed = time.perf_counter() - started
    counts = {}
    with engine.store.transaction() as tx:
        counts = tx.count_runs()
    completed = counts.get("completed", 0)
    if completed != subjects:
        print(f"warning: {completed} of {subjects} runs completed: {counts}", file=sys.stderr)
    transitions = engine.worker.transitions
    engine.close()
    return completed / elapsed, transitions / elapsed, completed


def bench_raw_sqlite(subjects: int, batch: int, workdir: Path) -> float:
    db = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE steps (run TEXT, step INTEGER, output TEXT)")
    started = time.perf_counter()
    for lo in range(0, subjects, batch):
        rows = [(f"r{i}", s, '{"ok": true}') for i in range(lo, min(lo + batch, subjects)) for s in range(5)]
        db.execute("BEGIN")
        db.executemany("INSERT INTO steps VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return subjects / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print the top functions by internal time")
    parser.add_argument("--peer-runs", type=int, default=1000, help="runs for each peer (DBOS, LangGraph)")
    parser.add_argument("--no-peers", action="store_true", help="skip running the peers")
    parser.add_argument("--db", help="run Itinera on this database instead of a fresh SQLite file (e.g. an empty PostgreSQL database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
        runs_s, trans_s, completed = bench_itinera(args.subjects, args.batch, work, args.db)
        if args.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        raw = bench_raw_sqlite(args.subjects, args.batch, work)
        peer_results = [] if args.no_peers else run_peers(args.peer_runs, work)  # after Itinera: no overlap
    print(f"{'system':58} {'runs/s':>10} {'Itinera is':>11}")
    backend = "PostgreSQL" if args.db and args.db.startswith("postgres") else "SQLite"
    print(f"{f'Itinera ({backend}, {completed:,} runs, this run)':58} {runs_s:10,.0f} {'1.00x':>11}")
    print(f"{'raw sqlite3, 5 rows/run, batched (this run)':58} {raw:10,.0f} {runs_s / raw:10.3f}x")
    for peer, figure in peer_results:
        if figure is None:
            name, figure = MEASURED[peer.key]
            label = f"{name} (earlier figure; not installed here)"
        else:
            label = f"{peer.label} ({args.peer_runs:,} runs, this run)"
        print(f"{label:58} {figure:10,.0f} {runs_s / figure:10.1f}x")
    print(f"\n{completed} runs completed; {trans_s:,.0f} task transitions/s")


if __name__ == "__main__":
    main()
