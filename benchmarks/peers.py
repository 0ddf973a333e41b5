"""Peer throughput: Itinera's reference journey, rebuilt on DBOS Transact and on LangGraph.

    python benchmarks/peers.py [--runs 1000] [--library-defaults] [--dbos-async]

Each peer runs the closest equivalent of ``benchmarks/engine.py``'s journey as a durable
5-step workflow on a SQLite file in a temporary directory, in this one process:

    set -> switch -> call a block (log at debug) -> emit an event -> wait for an external event

The clock covers the same cycle as Itinera's: start N runs, let every run reach its wait,
deliver one event to each, and wait until all N have completed. It prints completed runs/s.

* DBOS: a ``@DBOS.workflow()`` calling four ``@DBOS.step()``s, then ``DBOS.recv`` woken by
  ``DBOS.send_bulk`` (1,000 messages a call, as ``engine.py`` sends 1,000 events a call).
* LangGraph: a ``StateGraph`` of five nodes compiled with ``SqliteSaver``, one thread per run,
  ``durability="sync"`` (every step checkpointed before the next starts); the last node calls
  ``interrupt()`` and is resumed with ``Command(resume=...)``.

SQLite settings: by default every peer runs as Itinera does, WAL with ``synchronous=NORMAL``,
so all systems make the same durability promise. ``--library-defaults`` leaves each library's
own settings (DBOS: rollback journal, ``synchronous=FULL``; LangGraph: WAL, ``FULL``).

``engine.py`` calls ``run_peers`` (or each ``PEERS`` entry's ``bench``); a peer whose package
is missing returns None, and ``SKIPPED`` says why.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

EVENT_TYPE = "com.itinera.bench.activated"
CHUNK = 1000  # events per delivery call, as engine.py sends them
PLANS = ("premium", "basic")

# Why a peer returned None, by the label it would have been printed under.
SKIPPED: dict[str, str] = {}

_block_log = logging.getLogger("benchmarks.peers.block")
_block_log.setLevel(logging.WARNING)  # the block logs at debug, as the journey's does


def _inputs(n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for i in range(n):
        yield f"r{i}", {"customer": f"c{i}", "plan": PLANS[i % 2], "score": i % 100}


# The four task bodies, shared by both peers so they do the same work.
def _set(payload: dict[str, Any]) -> dict[str, Any]:
    return {"customer": payload["customer"], "plan": payload["plan"], "score": payload["score"]}


def _switch(profile: dict[str, Any]) -> str:
    return "premium" if profile["plan"] == "premium" else "default"


def _block() -> dict[str, Any]:
    _block_log.debug("welcome")
    return {"logged": True}


def _emit(customer: str, logged: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"welcomed-{customer}",
        "source": "itinera://bench",
        "type": "com.itinera.bench.welcomed",
        "data": {"customer": logged},
    }


class _NormalSyncConnection(sqlite3.Connection):
    """A sqlite3 connection with ``synchronous=NORMAL``, Itinera's setting (a per-connection pragma)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous=NORMAL")


def _fresh_dir(workdir: Path, prefix: str) -> Path:
    """A new directory per call: run ids repeat between calls, and a peer would find the old runs."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=workdir))


def _use_wal(path: Path) -> None:
    """Put the file in WAL mode; the mode is stored in the file, so every later connection has it."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


def _named(dist: str, name: str) -> str:
    try:
        return f"{name} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return name


def dbos_label(*, use_async: bool = False) -> str:
    return f"{_named('dbos', 'DBOS')}, {'async' if use_async else 'sync'} workflows"


def langgraph_label() -> str:
    return f"{_named('langgraph', 'LangGraph')} + SqliteSaver"


def bench_dbos(n: int, workdir: Path, *, library_defaults: bool = False, use_async: bool = False) -> float | None:
    """Completed runs/s of the reference journey as a DBOS workflow, or None if DBOS is missing.

    Sync workflows (the default) run each run on a thread of DBOS's executor, which it keeps
    while the run waits in ``DBOS.recv``; ``use_async`` runs ``async def`` workflows on one
    event loop, waiting in ``DBOS.recv_async``.
    """
    label = dbos_label(use_async=use_async)
    try:
        from dbos import DBOS, DBOSConfig, SendMessage, SetWorkflowID
    except ImportError as exc:
        SKIPPED[label] = f"not installed ({exc})"
        return None

    db = _fresh_dir(workdir, "dbos") / "system.sqlite"
    config: DBOSConfig = {
        "name": "itinera-bench",
        "system_database_url": f"sqlite:///{db}",
        "log_level": "WARNING",
        "application_version": "bench",  # DBOS hashes workflow source otherwise, and warns it cannot here
    }
    if not library_defaults:
        _use_wal(db)
        config["db_engine_kwargs"] = {"connect_args": {"factory": _NormalSyncConnection}}

    # Runs that have reached their wait: the harness sends no event before all N have, as
    # engine.py sends none before run_until_idle has parked every run on its listen.
    waiting = 0
    all_waiting = threading.Condition()

    def reached_wait() -> None:
        nonlocal waiting
        with all_waiting:
            waiting += 1
            all_waiting.notify_all()

    # Registered here, not at import, so that importing this module needs no DBOS; DBOS wants
    # its functions registered before DBOS() and launch(), and destroy() forgets them.
    if use_async:

        @DBOS.step()
        async def set_step_async(payload: dict[str, Any]) -> dict[str, Any]:
            return _set(payload)

        @DBOS.step()
        async def switch_step_async(profile: dict[str, Any]) -> str:
            return _switch(profile)

        @DBOS.step()
        async def block_step_async() -> dict[str, Any]:
            return _block()

        @DBOS.step()
        async def emit_step_async(customer: str, logged: dict[str, Any]) -> dict[str, Any]:
            return _emit(customer, logged)

        @DBOS.workflow()
        async def reference_journey_async(payload: dict[str, Any]) -> Any:
            profile = await set_step_async(payload)
            await switch_step_async(profile)
            logged = await block_step_async()
            await emit_step_async(profile["customer"], logged)
            reached_wait()
            # The timeout only guards against a lost message; a None result counts as a failed run.
            return await DBOS.recv_async(EVENT_TYPE, timeout_seconds=600)

        async def cycle() -> list[Any]:
            handles = []
            for run_id, payload in _inputs(n):
                with SetWorkflowID(run_id):
                    handles.append(await DBOS.start_workflow_async(reference_journey_async, payload))
            while waiting < n:  # the runs share this loop: yield to them until all wait
                await asyncio.sleep(0.005)
            ids = [h.get_workflow_id() for h in handles]
            for lo in range(0, n, CHUNK):
                await DBOS.send_bulk_async([SendMessage(wid, {"ok": True}, EVENT_TYPE) for wid in ids[lo : lo + CHUNK]])
            return [await h.get_result() for h in handles]

    else:

        @DBOS.step()
        def set_step(payload: dict[str, Any]) -> dict[str, Any]:
            return _set(payload)

        @DBOS.step()
        def switch_step(profile: dict[str, Any]) -> str:
            return _switch(profile)

        @DBOS.step()
        def block_step() -> dict[str, Any]:
            return _block()

        @DBOS.step()
        def emit_step(customer: str, logged: dict[str, Any]) -> dict[str, Any]:
            return _emit(customer, logged)

        @DBOS.workflow()
        def reference_journey(payload: dict[str, Any]) -> Any:
            profile = set_step(payload)
            switch_step(profile)
            logged = block_step()
            emit_step(profile["customer"], logged)
            reached_wait()
            return DBOS.recv(EVENT_TYPE, timeout_seconds=600)

    DBOS(config=config)
    DBOS.launch()
    try:
        started = time.perf_counter()
        if use_async:
            results = asyncio.run(cycle())
        else:
            handles = []
            for run_id, payload in _inputs(n):
                with SetWorkflowID(run_id):
                    handles.append(DBOS.start_workflow(reference_journey, payload))
            with all_waiting:
                all_waiting.wait_for(lambda: waiting == n)
            ids = [h.get_workflow_id() for h in handles]
            for lo in range(0, n, CHUNK):
                DBOS.send_bulk([SendMessage(wid, {"ok": True}, EVENT_TYPE) for wid in ids[lo : lo + CHUNK]])
            results = [h.get_result() for h in handles]
        elapsed = time.perf_counter() - started
    finally:
        DBOS.destroy(destroy_registry=True)
    completed = sum(r is not None for r in results)
    if completed != n:
        print(f"warning: {label} completed {completed} of {n} runs", file=sys.stderr)
    return completed / elapsed


def bench_dbos_async(n: int, workdir: Path, *, library_defaults: bool = False) -> float | None:
    """``bench_dbos`` with ``async def`` workflows: no thread held per waiting run."""
    return bench_dbos(n, workdir, library_defaults=library_defaults, use_async=True)


class _State(TypedDict, total=False):
    customer: str
    plan: str
    score: int
    profile: dict[str, Any]
    branch: str
    logged: dict[str, Any]
    event: dict[str, Any]
    activation: Any


def bench_langgraph(n: int, workdir: Path, *, library_defaults: bool = False) -> float | None:
    """Completed runs/s of the reference journey as a LangGraph graph, or None if LangGraph is missing."""
    try:
        from langchain_core.runnables import RunnableConfig
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Command, interrupt
    except ImportError as exc:
        SKIPPED[langgraph_label()] = f"not installed ({exc})"
        return None

    def profile(state: _State) -> _State:
        return {"profile": _set(dict(state))}

    def route(state: _State) -> _State:
        return {"branch": _switch(state["profile"])}

    def greet(state: _State) -> _State:
        return {"logged": _block()}

    def announce(state: _State) -> _State:
        return {"event": _emit(state["profile"]["customer"], state["logged"])}

    def activation(state: _State) -> _State:
        return {"activation": interrupt({"type": EVENT_TYPE})}

    builder = StateGraph(_State)
    nodes = [("profile", profile), ("route", route), ("greet", greet), ("announce", announce), ("activation", activation)]
    previous = START
    for name, fn in nodes:
        builder.add_node(name, fn)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)

    factory = sqlite3.Connection if library_defaults else _NormalSyncConnection
    conn = sqlite3.connect(_fresh_dir(workdir, "langgraph") / "checkpoints.sqlite", check_same_thread=False, factory=factory)
    try:
        saver = SqliteSaver(conn)
        saver.setup()  # creates the tables and sets WAL; outside the clock, like engine.py's deploy
        graph = builder.compile(checkpointer=saver)
        configs: list[tuple[RunnableConfig, _State]] = [
            ({"configurable": {"thread_id": run_id}}, cast(_State, payload)) for run_id, payload in _inputs(n)
        ]
        started = time.perf_counter()
        for config, payload in configs:
            graph.invoke(payload, config, durability="sync")  # runs to the interrupt
        completed = 0
        for config, _ in configs:
            final = graph.invoke(Command(resume={"ok": True}), config, durability="sync")
            completed += "activation" in final and "__interrupt__" not in final
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    if completed != n:
        print(f"warning: LangGraph completed {completed} of {n} runs", file=sys.stderr)
    return completed / elapsed


@dataclass(frozen=True, kw_only=True)
class Peer:
    """A row of the comparison: what to print, and the function that measures it."""

    key: Literal["dbos", "dbos-async", "langgraph"]
    label: str
    bench: Callable[..., float | None]  # (n, workdir, *, library_defaults=False) -> runs/s or None


PEERS: list[Peer] = [
    Peer(key="dbos", label=dbos_label(), bench=bench_dbos),
    Peer(key="langgraph", label=langgraph_label(), bench=bench_langgraph),
]
# Not in the default comparison: on this workload it is no faster than sync workflows (see README).
DBOS_ASYNC = Peer(key="dbos-async", label=dbos_label(use_async=True), bench=bench_dbos_async)


def run_peers(
    n: int, workdir: Path, *, library_defaults: bool = False, peers: list[Peer] | None = None
) -> list[tuple[Peer, float | None]]:
    """Run each peer (default ``PEERS``) on ``n`` runs in its own directory under ``workdir``.

    Returns (peer, completed runs/s), with None for a peer whose package is missing; ``SKIPPED``
    then holds the reason under the peer's label.
    """
    return [(peer, peer.bench(n, workdir, library_defaults=library_defaults)) for peer in (PEERS if peers is None else peers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--library-defaults", action="store_true", help="keep each library's own SQLite journal and sync settings")
    parser.add_argument("--dbos-async", action="store_true", help="also run DBOS with async workflows")
    args = parser.parse_args()
    chosen = PEERS[:1] + [DBOS_ASYNC] + PEERS[1:] if args.dbos_async else PEERS
    with tempfile.TemporaryDirectory() as tmp:
        results = run_peers(args.runs, Path(tmp), library_defaults=args.library_defaults, peers=chosen)
    sqlite_mode = "library defaults" if args.library_defaults else "WAL, synchronous=NORMAL"
    print(f"{'system':40} {'runs/s':>12}   ({args.runs:,} runs each; SQLite: {sqlite_mode})")
    for peer, figure in results:
        shown = f"{figure:12,.0f}" if figure is not None else f"{'—':>12}   {SKIPPED.get(peer.label, '')}"
        print(f"{peer.label:40} {shown}")


if __name__ == "__main__":
    main()
