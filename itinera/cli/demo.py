"""``itinera demo``: the onboarding journey for thousands of synthetic customers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from itinera.cli.console import err, out, safe_url
from itinera.cli.session import load_settings, session

if TYPE_CHECKING:
    from itinera.demo import DemoReport

DEMO_DB = "sqlite:///itinera-demo.sqlite"


def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option("--customers", "-n", min=1, max=1_000_000, help="How many synthetic customers sign up.")] = 2_000,
    db: Annotated[str, typer.Option("--db", help="Where the demo stores its runs. A SQLite file is deleted and recreated each time; another database gets a fresh tenant.")] = DEMO_DB,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic customers (same seed, same customers).")] = 7,
    journey: Annotated[Path | None, typer.Option("--journey", exists=True, dir_okay=False, help="The onboarding journey (default: examples/onboarding.yaml).")] = None,
) -> None:
    """Onboard synthetic customers: welcome by plan, wait 3 days for activation, remind, wait 4 more.

    Seven-plus virtual days run in seconds on a virtual clock, on a SQLite file (no server).
    """
    from itinera.demo import run_demo

    err.print(f"onboarding [bold]{customers:,}[/] synthetic customers (seed {seed}) on {escape(safe_url(db))}")
    columns = (TextColumn("replaying events"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        bar = progress.add_task("events", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        report = run_demo(customers=customers, db=db, seed=seed, journey=journey, tenant=session(ctx).tenant, settings=load_settings(), progress=advance)
    _summary(report)


def _summary(report: DemoReport) -> None:
    runs = Table(title="Runs", title_justify="left")
    runs.add_column("status")
    runs.add_column("outcome")
    runs.add_column("runs", justify="right")
    runs.add_column("share", justify="right")
    total = sum(report.by_status.values()) or 1
    for outcome, count in sorted(report.by_outcome.items(), key=lambda kv: -kv[1]):
        runs.add_row("completed", outcome, f"{count:,}", f"{count / total:.1%}")
    for status, count in sorted(report.by_status.items()):
        if status != "completed":
            runs.add_row(f"[red]{status}[/]" if status == "faulted" else status, "-", f"{count:,}", f"{count / total:.1%}")
    out.print(runs)

    figures = Table(title="Figures", title_justify="left", show_header=False)
    figures.add_column(justify="left")
    figures.add_column(justify="right")
    figures.add_row("customers", f"{report.customers:,}")
    figures.add_row("events ingested", f"{report.events_accepted:,} of {report.events_sent:,}")
    figures.add_row("runs started", f"{report.runs_started:,}")
    figures.add_row("reminders sent", f"{report.reminders:,}")
    figures.add_row("task transitions", f"{report.tasks:,}")
    figures.add_row("virtual time", f"{report.virtual_days:.1f} days")
    figures.add_row("wall time", f"{report.wall_seconds:.1f} s ({report.setup_seconds:.1f} s setting up)")
    figures.add_row("runs/s", f"{report.runs_per_second:,.0f}")
    out.print(figures)
    tenant = "" if report.tenant == load_settings().tenant else f" --tenant {report.tenant}"
    out.print(f"inspect the runs: [bold]itinera --db {escape(safe_url(report.database))}{escape(tenant)} runs list[/]")
