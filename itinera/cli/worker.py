"""``itinera worker``: advance runs and deliver side effects until stopped."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape

from itinera.cli.console import err, safe_url
from itinera.cli.session import session


def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Do the work that is due now, then exit.")] = False,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Runs advanced per transaction (default: setting ITINERA_BATCH_SIZE).")] = None,
    report_every: Annotated[float, typer.Option("--report-every", min=0.1, help="Seconds between rate lines.")] = 10.0,
) -> None:
    """Advance runs whose events or timers are due, and send their side effects.

    Runs until Ctrl-C or SIGTERM, finishing the batch in hand before it exits. Several workers
    may share one PostgreSQL database; each run is leased to one of them at a time.
    """
    current = session(ctx)
    overrides: dict[str, Any] = {} if batch is None else {"batch_size": batch}
    with current.engine(**overrides) as engine:
        w = engine.worker
        if once:
            done = engine.run_until_idle()
            err.print(f"advanced {_runs(w.advanced)} and made {done - w.advanced} outbox deliveries; nothing else is due now")
            return
        idle = engine.settings.worker_idle_sleep
        err.print(f"worker [bold]{escape(w.name)}[/] on {escape(safe_url(current.db))}, {w.batch_size} runs a batch; Ctrl-C stops it")
        began = time.monotonic()
        with _stop_on_signals() as stop:
            last_at, last_runs, last_total, total = began, 0, 0, 0
            while not stop.is_set():
                n = engine.tick()
                total += n
                if n == 0:
                    stop.wait(idle)
                now = time.monotonic()
                if now - last_at >= report_every:
                    runs, deliveries = w.advanced - last_runs, (total - last_total) - (w.advanced - last_runs)
                    err.print(f"{time.strftime('%H:%M:%S')} {runs / (now - last_at):,.1f} runs/s ({runs} advanced, {deliveries} deliveries in {now - last_at:.0f}s)")
                    last_at, last_runs, last_total = now, w.advanced, total
        elapsed = max(time.monotonic() - began, 1e-6)
        err.print(f"worker stopped after advancing {_runs(w.advanced)} in {elapsed:.1f}s ({w.advanced / elapsed:,.1f} runs/s)")


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM; a second one interrupts at once."""
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print("stopping after this batch (press Ctrl-C again to stop now)")

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


