"""The onboarding demo: synthetic customers are reproducible, and every run ends as they behaved."""

from __future__ import annotations

from pathlib import Path

from itinera.demo import make_customers, run_demo, timeline
from itinera.demo.customers import ACTIVATED, DAY, SIGNED_UP


def test_customers_are_reproducible_from_the_seed() -> None:
    a = make_customers(300, seed=7, start=0.0)
    assert a == make_customers(300, seed=7, start=0.0)
    assert a != make_customers(300, seed=8, start=0.0)
    assert {c.behaviour for c in a} == {"prompt", "after_reminder", "never"}
    assert all(0.0 <= c.signed_up_at <= 3 * DAY for c in a)
    for c in a:
        if c.behaviour == "prompt":
            assert c.activates_at is not None and c.activates_at < c.signed_up_at + 3 * DAY
        elif c.behaviour == "after_reminder":
            assert c.activates_at is not None and c.signed_up_at + 3 * DAY < c.activates_at < c.signed_up_at + 7 * DAY
        else:
            assert c.activates_at is None


def test_timeline_is_in_time_order_with_one_signup_per_customer() -> None:
    customers = make_customers(100, seed=1, start=0.0)
    events = timeline(customers)
    times = [t for t, _ in events]
    assert times == sorted(times)
    signups = [e for _, e in events if e["type"] == SIGNED_UP]
    assert sorted(e["subject"] for e in signups) == sorted(c.id for c in customers)
    activations = [e for _, e in events if e["type"] == ACTIVATED]
    assert len(activations) == sum(c.activates_at is not None for c in customers)
    assert len({e["id"] for _, e in events}) == len(events)


def test_every_run_ends_as_its_customer_behaved(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    report = run_demo(customers=120, db=f"sqlite:///{tmp_path / 'demo.sqlite'}", seed=3, progress=lambda done, total: seen.append((done, total)))
    assert report.runs_started == 120
    assert report.by_status == {"completed": 120}
    assert report.by_outcome["activated"] == report.planned["prompt"]
    assert report.by_outcome["activated after reminder"] == report.planned["after_reminder"]
    assert report.by_outcome["dormant"] == report.planned["never"]
    assert report.reminders == report.planned["after_reminder"] + report.planned["never"]
    assert report.events_accepted == report.events_sent == 120 + report.planned["prompt"] + report.planned["after_reminder"]
    assert report.events_rejected == 0
    assert report.virtual_days > 7
    assert seen[-1] == (report.events_sent, report.events_sent)


def test_a_sqlite_demo_database_is_recreated(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    first = run_demo(customers=20, db=db, seed=5)
    again = run_demo(customers=20, db=db, seed=5)
    assert again.by_status == first.by_status == {"completed": 20}
    assert again.events_accepted == first.events_accepted  # not duplicates of the first run's events
