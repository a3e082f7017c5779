"""Rollups recomputed from the stored events, for `audit verify`: pure functions, no database.

The events of a task are planned again as the ingest planned them (`plan.plan_batch`), which
gives the task's totals and its spend by hour, system, agent and model; what the `tasks` and
`spend_hourly` tables hold is compared with that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ledger.plan import Incoming, SpendDelta, SpendKey, TaskDelta, plan_batch

COST_TOLERANCE = Decimal("1e-9")
"""USD amounts are stored as numeric(24, 12), rounded batch by batch."""

TASK_TOTALS = (
    "model_calls",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "events",
)
SPEND_TOTALS = ("calls", "unpriced_calls", "input_tokens", "output_tokens", "cached_tokens")


def recompute(
    task_id: str, items: Iterable[Incoming], spend: dict[SpendKey, SpendDelta]
) -> TaskDelta | None:
    """A task's totals from its events in chain order; its spend is added to `spend`."""
    plan = plan_batch(items, set(), {})
    for key, delta in plan.spend.items():
        total = spend.setdefault(key, SpendDelta())
        for name in (*SPEND_TOTALS, "cost_usd"):
            setattr(total, name, getattr(total, name) + getattr(delta, name))
    return plan.tasks.get(task_id)


def _differs(stored: Any, expected: Any) -> bool:
    if isinstance(expected, Decimal):
        return abs(Decimal(stored) - expected) > COST_TOLERANCE
    return bool(stored != expected)


def task_disagreements(
    task_id: str, row: Mapping[str, Any] | None, expected: TaskDelta | None
) -> list[str]:
    if row is None:
        return [f"task {task_id}: has events but no row in the tasks rollup"]
    if expected is None:
        return [f"task {task_id}: its tasks rollup row has no events behind it"]
    return [
        f"task {task_id}: rollup {name} is {row[name]} but its events add up to "
        f"{getattr(expected, name)}"
        for name in TASK_TOTALS
        if _differs(row[name], getattr(expected, name))
    ]


def spend_disagreements(
    rows: Iterable[Mapping[str, Any]], expected: Mapping[SpendKey, SpendDelta]
) -> list[str]:
    problems = []
    seen = set()
    for row in rows:
        key: SpendKey = (row["hour"], row["system"], row["agent"], row["model"])
        seen.add(key)
        want = expected.get(key, SpendDelta())
        where = f"spend of {key[1]}/{key[2]}/{key[3]} at {key[0].isoformat()}"
        for name in (*SPEND_TOTALS, "cost_usd"):
            if _differs(row[name], getattr(want, name)):
                problems.append(
                    f"{where}: rollup {name} is {row[name]} but the events add up to "
                    f"{getattr(want, name)}"
                )
    for key in sorted(expected.keys() - seen):
        problems.append(
            f"spend of {key[1]}/{key[2]}/{key[3]} at {key[0].isoformat()}: the events hold "
            f"{expected[key].calls} model calls but the rollup has no row"
        )
    return problems
