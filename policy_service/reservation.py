"""A budget reservation as values: what a call asks of its budgets, and what it was answered.

Plain data (no database): the decision (`decision.py`) asks with a `BudgetRequest` and reads the
`Reservation`; the store (`budgets.py`) makes the reservation in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policy_service.rules import BudgetCap


@dataclass(frozen=True, slots=True)
class BudgetRequest:
    """One call's estimate, to reserve on every cap that applies to it."""

    request_id: str
    task_id: str
    caps: Sequence[BudgetCap]
    tokens: int
    usd: float


@dataclass(frozen=True, slots=True)
class Reservation:
    ok: bool
    cap: BudgetCap | None = None
    """The cap that refused, when not ok."""
    used_tokens: int = 0
    used_usd: float = 0.0
    rule: str = ""
    reason: str = ""


def refusal(
    cap: BudgetCap, used_tokens: int, used_usd: float, tokens: int, usd: float
) -> Reservation:
    """The refusal of `cap`, which the task has used `used_tokens`/`used_usd` of, to a call
    estimated at `tokens`/`usd`: the token rule when the tokens do not fit, else the USD rule."""
    if cap.max_tokens is not None and (
        used_tokens + tokens > cap.max_tokens or used_tokens >= cap.max_tokens
    ):
        return Reservation(
            ok=False,
            cap=cap,
            used_tokens=used_tokens,
            used_usd=used_usd,
            rule="max_tokens_per_task",
            reason=f"the task has used {used_tokens} of its {cap.max_tokens} tokens; this call "
            f"may use {tokens} more",
        )
    return Reservation(
        ok=False,
        cap=cap,
        used_tokens=used_tokens,
        used_usd=used_usd,
        rule="max_cost_per_task_usd",
        reason=f"the task has spent ${used_usd:.6f} of its ${cap.max_usd} budget; this call may "
        f"cost ${usd:.6f} more",
    )
