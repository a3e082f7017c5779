"""What `podium get schedules` shows: the state of every schedule, and its next slot; and what
`podium get task(s)` shows of an applied Task: its attempts and Orloj's phase."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from manifests.models import Task, TaskSchedule
from podium.core.settings import KafkaSettings
from scheduler.runs import RunState, decide, decode_runs
from scheduler.slots import Cron
from scheduler.state import ScheduleState, decode_states, state_topic
from topics.messages import utcnow
from topics.names import TopicNames
from topics.tables import read_latest


async def read_states(kafka: KafkaSettings, names: TopicNames) -> dict[str, ScheduleState]:
    """The latest state of every schedule ({} when the scheduler never ran)."""
    return decode_states(await read_latest(kafka, state_topic(names)))


def next_slot(
    schedule: TaskSchedule, state: ScheduleState | None, now: datetime | None = None
) -> datetime | None:
    """The next slot the scheduler will decide (None while suspended)."""
    if schedule.spec.suspend:
        return None
    now = now or utcnow()
    after = max(now, state.last_slot) if state and state.last_slot else now
    return Cron(schedule.spec.schedule, schedule.spec.time_zone).next_after(after)


async def read_runs(kafka: KafkaSettings, names: TopicNames) -> dict[str, RunState]:
    """The latest state of every applied Task the scheduler has submitted, by name."""
    return decode_runs(await read_latest(kafka, state_topic(names)))


LEDGER_PHASES = {"succeeded": "Succeeded", "failed": "Failed", "running": "Running"}


def ledger_phase(status: str | None, waiting: bool) -> str:
    """Orloj's phase of a task the ledger knows (requested or unknown: Pending; running with a
    pending approval: WaitingApproval)."""
    phase = LEDGER_PHASES.get(status or "", "Pending")
    return "WaitingApproval" if phase == "Running" and waiting else phase


def task_phase(
    task: Task,
    run: RunState | None,
    ledger: Mapping[str, Any] | None,
    *,
    waiting: bool,
    timeout_s: float,
    now: datetime | None = None,
) -> str:
    """The phase of an applied Task: the scheduler's record, and the ledger's view of its
    current attempt (`ledger`, the API's task, None when the ledger has not seen it yet)."""
    if run is None or run.done or run.next_attempt_at is not None:
        return run.phase if run is not None else "Pending"
    status = (ledger or {}).get("status")
    if status not in ("succeeded", "failed"):
        return ledger_phase(status, waiting)
    # Ended, and the scheduler has not recorded it yet: what it will decide.
    ended = (status, now or utcnow(), str((ledger or {}).get("error") or ""))
    step = decide(task, run, now=now or utcnow(), ended=lambda _: ended, timeout_s=timeout_s)
    return step.state.phase if step.state is not None else run.phase
