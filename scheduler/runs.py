"""The pure part of running an applied `Task` (mode run): its attempts, and what to do next.

No Kafka here. A Task runs once per name: its state record (`task:<name>` on the scheduler's
state topic) is written in the same transaction as each attempt it submits, so an attempt is
submitted once, whoever owns the partition and however often the Task is applied. Attempt 1 is
the task `<name>`, attempt n the task `<name>:attempt-<n>`.

As in Orloj: a failed attempt is retried after `retry.backoff`, doubled per attempt (at most
24 h), until `retry.max_attempts`; then the Task is `DeadLetter`. An error that another run would
meet again (a policy denial, a budget, something not applied) is `Failed` at once. Orloj retries
only errors marked transient; Podium retries every other failure, since its actors have already
retried the transient ones within the attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from manifests.catalog import Catalog
from manifests.models import Task, TaskSchedule
from manifests.models.tasks import PRIORITIES
from topics.messages import TaskRequested

KEY_PREFIX = "task:"
"""State keys of Tasks; a schedule's key is its bare name (a resource name has no ':')."""

Outcome = tuple[str, datetime, str]
"""How an attempt's task ended: (succeeded | failed, when, error)."""

NOT_RETRYABLE = (
    "denied by policy",
    "policy ",
    "permission denied",
    "budget",
    "is not applied",
    "invalid ",
)
"""What a failed attempt says when running it again would fail the same way (Orloj's markers)."""


def state_key(task: str) -> str:
    return f"{KEY_PREFIX}{task}"


def attempt_id(task: str, number: int) -> str:
    return task if number == 1 else f"{task}:attempt-{number}"


def retryable(error: str) -> bool:
    lower = error.lower()
    return not any(marker in lower for marker in NOT_RETRYABLE)


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    task_id: str
    submitted_at: datetime
    status: str = "active"
    """active | succeeded | failed"""
    finished_at: datetime | None = None
    error: str = ""


class RunState(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    attempts: list[Attempt] = []
    phase: str = "Pending"
    """Pending (an attempt submitted, or waiting for its backoff), Succeeded, Failed, DeadLetter:
    what the scheduler knows. Running and WaitingApproval come from the ledger."""
    next_attempt_at: datetime | None = None
    last_error: str = ""

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, value: bytes) -> RunState:
        return msgspec.json.decode(value, type=cls)

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed", "DeadLetter")


@dataclass(frozen=True, slots=True)
class Step:
    """One evaluation: the new state (None: unchanged) and the attempt to submit, if any."""

    state: RunState | None = None
    submit: Attempt | None = None
    notes: list[str] = field(default_factory=list)


def decide(
    task: Task,
    state: RunState | None,
    *,
    now: datetime,
    ended: Callable[[str], Outcome | None],
    timeout_s: float,
) -> Step:
    """What to do for `task` at `now`, given how its attempts' tasks ended (`ended`)."""
    name = task.name
    if state is None:
        first = Attempt(number=1, task_id=attempt_id(name, 1), submitted_at=now)
        return Step(RunState(task=name, attempts=[first]), first)
    if state.done:
        return Step()
    if state.next_attempt_at is not None:
        if now < state.next_attempt_at:
            return Step()
        number = len(state.attempts) + 1
        attempt = Attempt(number=number, task_id=attempt_id(name, number), submitted_at=now)
        new = msgspec.structs.replace(
            state, attempts=[*state.attempts, attempt], next_attempt_at=None, phase="Pending"
        )
        return Step(new, attempt)
    current = state.attempts[-1]
    outcome = ended(current.task_id)
    if outcome is None:
        if now - current.submitted_at <= timedelta(seconds=timeout_s):
            return Step()
        outcome = ("failed", now, f"timed out: no result within {timeout_s:g} s")
    status, finished_at, error = outcome
    closed = msgspec.structs.replace(current, status=status, finished_at=finished_at, error=error)
    attempts = [*state.attempts[:-1], closed]
    if status == "succeeded":
        return Step(msgspec.structs.replace(state, attempts=attempts, phase="Succeeded"))
    delays = task.spec.retry_delays
    if not retryable(error):
        phase = "Failed"
    elif closed.number > len(delays):
        phase = "DeadLetter"
    else:
        delay = delays[closed.number - 1]
        retry_at = max(finished_at, current.submitted_at) + timedelta(seconds=delay)
        new = msgspec.structs.replace(
            state, attempts=attempts, next_attempt_at=retry_at, last_error=error
        )
        return Step(new, notes=[f"attempt {closed.number} failed; retry in {delay:g} s"])
    return Step(msgspec.structs.replace(state, attempts=attempts, phase=phase, last_error=error))


def decode_runs(latest: dict[str, bytes]) -> dict[str, RunState]:
    """The Tasks' states among the state topic's latest values (by Task name)."""
    runs: dict[str, RunState] = {}
    for key, value in latest.items():
        if key.startswith(KEY_PREFIX):
            try:
                run = RunState.decode(value)
            except ValueError:
                continue  # the scheduler logs it when it restores the partition
            runs[run.task] = run
    return runs


TASK_LABEL = "orloj.dev/task"
ATTEMPT_LABEL = "orloj.dev/task-attempt"
PRIORITY_LABEL = "orloj.dev/priority"


def request_for(task: Task, attempt: Attempt, *, timeout_s: float) -> TaskRequested:
    """The `TaskRequested` of one attempt, `submitted_by task/<name>`."""
    spec = task.spec
    return TaskRequested(
        task_id=attempt.task_id,
        system=spec.system,
        input=dict(spec.input) or "",
        submitted_at=attempt.submitted_at,
        timeout_s=timeout_s,
        submitted_by=f"task/{task.name}",
        labels={
            **task.metadata.labels,
            TASK_LABEL: task.name,
            ATTEMPT_LABEL: str(attempt.number),
            PRIORITY_LABEL: spec.priority,
        },
    )


def work_order(catalog: Catalog) -> list[tuple[str, TaskSchedule | Task]]:
    """What a tick evaluates, by state key, in the order it submits: by priority (a schedule
    has its template's), then by key."""
    work: list[tuple[int, str, TaskSchedule | Task]] = []
    for schedule in catalog.schedules.values():
        template = catalog.tasks.get(schedule.spec.task_name)
        rank = PRIORITIES.index(template.spec.priority if template else "normal")
        work.append((rank, schedule.name, schedule))
    for task in catalog.tasks.values():
        if task.spec.mode == "run":
            work.append((PRIORITIES.index(task.spec.priority), state_key(task.name), task))
    return [(key, item) for _, key, item in sorted(work, key=lambda w: (w[0], w[1]))]
