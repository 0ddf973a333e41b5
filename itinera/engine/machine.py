"""Advance one run as far as it can go without waiting: the pure core of the engine.

``advance`` takes a run's state and whatever was delivered to it, re-descends its frames, and
returns what happened: the new status and, when it must wait, the timers, subscriptions and
outbox results it waits for. It does no I/O; the worker persists the result. Given the same
state, deliveries and clock it always produces the same result, which is what makes a crash
between two commits harmless: the worker simply advances the run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from itinera.engine.execution import Blocked, EndWorkflow, Execution, SubscriptionSpec
from itinera.engine.plan import Plan
from itinera.errors import ErrorType, Problem, RunFailure
from itinera.store.base import Delivery, RunStatus


@dataclass(kw_only=True, slots=True)
class Advance:
    """What one advance of one run produced."""

    status: RunStatus
    ex: Execution
    wake_at: float | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    subscriptions_changed: bool = False
    subscriptions: list[SubscriptionSpec] = field(default_factory=list)


def start_state(raw_input: Any, now: float, *, event_seq: int) -> dict[str, Any]:
    """The state of a run that has not started yet."""
    return {"wf": {"in": raw_input, "t0": now}, "ev": event_seq}


def advance(
    plan: Plan,
    *,
    run_id: str,
    tenant: str,
    subject: str | None,
    state: dict[str, Any],
    deliveries: list[Delivery],
    now: float,
    secrets: dict[str, Any],
    runtime_version: str,
    trace: list[dict[str, Any]] | None = None,
) -> Advance:
    """Advance the run; ``state`` is updated in place (see module docstring)."""
    wf = state["wf"]
    by_sub: dict[str, list[Delivery]] = {}
    for d in deliveries:
        by_sub.setdefault(d.sub_id, []).append(d)
    ex = Execution(
        run_id=run_id,
        tenant=tenant,
        subject=subject,
        now=now,
        state=state,
        definition=plan.document,
        runtime_version=runtime_version,
        secrets=secrets,
        deliveries=by_sub,
        trace=trace,
    )
    root = plan.root_task
    # The transformed input is stored only when `input.from` made it differ from the raw one.
    rf: dict[str, Any] = {"ti": wf.get("ti", wf["in"]), "in": wf["in"], "t0": wf["t0"]}
    try:
        if "ti" not in wf and "s" not in wf:
            ex.record("run.started")
            root.validate(plan.input_schema, wf["in"], "workflow input")
            if plan.input_from is not None:
                ti = wf["ti"] = rf["ti"] = root.evaluate(plan.input_from, wf["in"], ex, rf)
            else:
                ti = wf["in"]
                wf["s"] = 1
            state["ctx"] = dict(ti) if isinstance(ti, dict) else {}
            if plan.timeout is not None:
                state["dl"] = now + plan.timeout
        if "dl" in state and now >= state["dl"]:
            raise RunFailure(
                Problem(type=ErrorType.TIMEOUT, status=408, title="Workflow timed out", detail=f"the run did not finish within {plan.timeout:g} s", instance="/"),
                retryable=False,
            )
        try:
            out = plan.root.run(ex, state.setdefault("root", {}), rf["ti"])
        except EndWorkflow as end:
            out = end.output
        if plan.output_as is not None:
            out = root.evaluate(plan.output_as, out, ex, rf, out)
        root.validate(plan.output_schema, out, "workflow output")
    except Blocked:
        if "dl" in state:
            ex.wake(state["dl"], "timeout")
        return _waiting(ex, state)
    except RunFailure as failure:
        error = failure.problem.to_dict()
        _finish(ex, state)
        state["err"] = error
        ex.record("run.faulted", error=error)
        return Advance(status="faulted", ex=ex, error=error, subscriptions_changed=bool(state.pop("subs", None)))
    _finish(ex, state)
    state["out"] = out
    ex.record("run.completed")
    return Advance(status="completed", ex=ex, output=out, subscriptions_changed=bool(state.pop("subs", None)))


def _finish(ex: Execution, state: dict[str, Any]) -> None:
    # A finished run keeps its data, context and result; its frames and waits go.
    state.pop("root", None)
    state.pop("waits", None)
    # Whatever is still addressed to the run can no longer be heard.
    for items in ex.deliveries.values():
        ex.consumed.extend(d.id for d in items)
    ex.deliveries.clear()


def _waiting(ex: Execution, state: dict[str, Any]) -> Advance:
    for items in ex.deliveries.values():  # addressed to a wait that no longer exists
        ex.consumed.extend(d.id for d in items)
    ex.deliveries.clear()
    subs = ex.subscriptions
    signature = [[s.sub_id, s.event_type, s.key] for s in subs]
    changed = signature != state.get("subs", [])
    if signature:
        state["subs"] = signature
    else:
        state.pop("subs", None)
    state["waits"] = ex.waits
    wake_at = min(ex.wakes) if ex.wakes else None
    return Advance(status="waiting", ex=ex, wake_at=wake_at, subscriptions_changed=changed, subscriptions=subs)
