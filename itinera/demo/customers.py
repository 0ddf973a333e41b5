"""Synthetic customers for the demo: who signs up when, on which plan, and if they activate.

Everything comes from one seeded random generator, so a seed always yields the same customers
and the same event stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from itinera.clock import iso

DAY = 86_400.0
HOUR = 3_600.0

SIGNED_UP = "com.itinera.demo.customer.signed_up"
ACTIVATED = "com.itinera.demo.customer.activated"
SOURCE = "https://itinera.dev/demo/crm"

Behaviour = Literal["prompt", "after_reminder", "never"]

_FIRST = ("Ada", "Bruno", "Chiara", "Dmitri", "Efua", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena", "Mateo", "Noor", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zofia")
_LAST = ("Abara", "Berg", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe", "Rossi", "Sato", "Tanaka", "Unger", "Varga", "Weber", "Yilmaz", "Zhou")
_PLANS = ("starter", "team", "premium")
_PLAN_WEIGHTS = (0.55, 0.30, 0.15)


@dataclass(frozen=True, kw_only=True)
class Customer:
    """One synthetic customer and what they will do."""

    id: str
    name: str
    email: str
    plan: str
    signed_up_at: float
    behaviour: Behaviour
    activates_at: float | None


def make_customers(count: int, *, seed: int, start: float, spread_days: float = 3.0) -> list[Customer]:
    """``count`` customers signing up over ``spread_days`` from ``start``.

    About 60% activate within the first three days (before any reminder), about 15% during the
    four days after the reminder, and the rest never do.
    """
    rng = random.Random(seed)
    customers = []
    for n in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        signed_up = start + rng.uniform(0, spread_days * DAY)
        roll = rng.random()
        behaviour: Behaviour
        if roll < 0.60:
            behaviour, activates = "prompt", signed_up + rng.uniform(10 * 60, 3 * DAY - HOUR)
        elif roll < 0.75:
            behaviour, activates = "after_reminder", signed_up + rng.uniform(3 * DAY + HOUR, 7 * DAY - HOUR)
        else:
            behaviour, activates = "never", None
        customers.append(
            Customer(
                id=f"cus_{n + 1:06d}",
                name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}.{n + 1}@example.com",
                plan=rng.choices(_PLANS, _PLAN_WEIGHTS)[0],
                signed_up_at=signed_up,
                behaviour=behaviour,
                activates_at=activates,
            )
        )
    return customers


def timeline(customers: list[Customer]) -> list[tuple[float, dict[str, Any]]]:
    """Every CloudEvent the customers cause, as ``(time, event)`` in time order."""
    events: list[tuple[float, dict[str, Any]]] = []
    for c in customers:
        events.append((c.signed_up_at, _event(f"{c.id}-signup", SIGNED_UP, c, c.signed_up_at, {"name": c.name, "email": c.email, "plan": c.plan})))
        if c.activates_at is not None:
            events.append((c.activates_at, _event(f"{c.id}-activated", ACTIVATED, c, c.activates_at, {"feature": "first_project"})))
    events.sort(key=lambda e: e[0])
    return events


def _event(id: str, type: str, customer: Customer, at: float, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": id, "source": SOURCE, "type": type, "subject": customer.id, "time": iso(at), "datacontenttype": "application/json", "data": data}
