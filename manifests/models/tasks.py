"""`Task` and `TaskSchedule`: work started by applying it, or by a trigger.

A `Task` of `mode: run` (Orloj's default) runs once when applied: the scheduler submits it and
re-runs a failed attempt as its `retry` says (`scheduler/runs.py`). A `Task` of `mode: template`
is the task a `TaskSchedule` starts on each cron slot (Orloj's
format: `task_ref`, a 5-field `schedule`, `time_zone`, `suspend`, `starting_deadline_seconds`,
`concurrency_policy`, history limits). A 6-field schedule whose first field is the second is
accepted too (`*/10 * * * * *`), for schedules finer than a minute.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from manifests.models._base import Name, ResourceBase, Seconds, _Model, parse_duration

SCHEDULE_NAME_MAX = 178
"""A schedule's name and its slot (`<name>-2026-01-05T09:00:00Z`) make a task id of at most 200
characters."""


PRIORITIES = ("high", "normal", "low")
"""Orloj's `priority`, in the order the scheduler submits the Tasks due at one tick."""

TASK_NAME_MAX = 185
"""A run Task's later attempts are tasks `<name>:attempt-<n>` (a task id has at most 200)."""


class TaskRetry(_Model):
    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff: float = Field(default=0.0, ge=0, le=7 * 86400)

    _backoff = field_validator("backoff", mode="before")(parse_duration)

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _unset(cls, value: object) -> object:
        return 1 if value == 0 else value  # Orloj reads 0 as "not set"


class MessageRetry(_Model):
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff: float | None = Field(default=None, ge=0, le=7 * 86400)
    max_backoff: Seconds = 86400.0
    jitter: Literal["none", "full", "equal"] = "full"
    non_retryable: list[str] = []

    _durations = field_validator("backoff", "max_backoff", mode="before")(parse_duration)


class TaskRequirements(_Model):
    """Orloj's worker placement. Podium has no workers: what it cannot honour is refused
    (another region, a GPU) or, for `model`, reported by `podium validate`."""

    region: str = ""
    gpu: bool = False
    model: str = ""

    @field_validator("region")
    @classmethod
    def _one_region(cls, value: str) -> str:
        if value.strip() not in ("", "default"):
            raise ValueError(
                f"region {value!r}: Podium places tasks in no region (its services are one "
                "deployment); leave it out or write `default`"
            )
        return value.strip()

    @field_validator("gpu")
    @classmethod
    def _no_gpu(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "gpu: true cannot be honoured: Podium runs no model itself (its endpoints do), "
                "so it has no GPU worker to place the task on"
            )
        return value


class TaskSpec(_Model):
    system: Name
    mode: Literal["run", "template"] = "run"
    input: dict[str, str] = {}
    priority: Literal["high", "normal", "low"] = "normal"
    max_turns: int = Field(default=0, ge=0)
    retry: TaskRetry = TaskRetry()
    message_retry: MessageRetry = MessageRetry()
    requirements: TaskRequirements = TaskRequirements()

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: object) -> object:
        return (value.strip().lower() or "run") if isinstance(value, str) else value

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower() or "normal"
            if value not in PRIORITIES:
                raise ValueError(
                    f"priority {value!r}: Podium orders submissions by high, normal or low "
                    "and cannot honour another value"
                )
        return value

    @property
    def retry_delays(self) -> list[float]:
        """Seconds before each attempt after the first (Orloj: backoff doubled per attempt, at
        most 24 h)."""
        base = self.retry.backoff
        return [min(base * 2 ** min(n, 10), 86400.0) for n in range(self.retry.max_attempts - 1)]


class Task(ResourceBase):
    """A Task: `mode: run` (the default) runs once when applied, `mode: template` is what a
    TaskSchedule or a TaskWebhook starts."""

    kind_name: ClassVar[str] = "Task"
    kind: Literal["Task"]
    spec: TaskSpec

    @model_validator(mode="after")
    def _short_name(self) -> Task:
        if self.spec.mode == "run" and len(self.metadata.name) > TASK_NAME_MAX:
            raise ValueError(
                f"a Task of mode run has a name of at most {TASK_NAME_MAX} characters (its "
                "attempts' task ids add up to 15)"
            )
        return self


def cron_fields(expression: str) -> list[str]:
    """The fields of a cron expression; raises ValueError naming the problem."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"schedule {expression!r} has {len(fields)} fields; write 5 (minute hour "
            "day-of-month month day-of-week, e.g. '0 9 * * 1'), or 6 with the second first"
        )
    from croniter import croniter

    if not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
        raise ValueError(
            f"schedule {expression!r} is not a valid cron expression (minute hour day-of-month "
            "month day-of-week, e.g. '0 9 * * 1')"
        )
    return fields


class TaskScheduleSpec(_Model):
    task_ref: str = Field(min_length=1, pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9]")
    schedule: str = Field(min_length=1)
    time_zone: str = "UTC"
    suspend: bool = False
    starting_deadline_seconds: int = Field(default=300, ge=0, le=31 * 86400)
    concurrency_policy: Literal["forbid", "allow"] = "forbid"
    successful_history_limit: int = Field(default=10, ge=0, le=1000)
    failed_history_limit: int = Field(default=3, ge=0, le=1000)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        cron_fields(value.strip())
        return value.strip()

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone = value.strip() or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"time_zone {value!r} is not an IANA time zone (e.g. UTC, Europe/Paris, "
                "America/Chicago)"
            ) from None
        return zone

    @field_validator("concurrency_policy", mode="before")
    @classmethod
    def _policy(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower() or "forbid"
        if value == "replace":
            raise ValueError(
                "concurrency_policy 'replace' would cancel the running task, and Podium cannot "
                "cancel a task: use forbid (skip a slot while the previous run is active) or allow"
            )
        return value

    @model_validator(mode="after")
    def _defaults(self) -> TaskScheduleSpec:
        # Orloj reads 0 as "not set": the default window of 300 s.
        if self.starting_deadline_seconds == 0:
            object.__setattr__(self, "starting_deadline_seconds", 300)
        return self

    @property
    def task_name(self) -> str:
        """The template's name (`task_ref` is `name` or `namespace/name`)."""
        return self.task_ref.rsplit("/", 1)[-1]


class TaskSchedule(ResourceBase):
    """Starts its task template on every slot of a cron schedule, in a time zone."""

    kind_name: ClassVar[str] = "TaskSchedule"
    kind: Literal["TaskSchedule"]
    spec: TaskScheduleSpec

    @model_validator(mode="after")
    def _short_name(self) -> TaskSchedule:
        if len(self.metadata.name) > SCHEDULE_NAME_MAX:
            raise ValueError(
                f"a TaskSchedule's name has at most {SCHEDULE_NAME_MAX} characters (the task ids "
                "of its slots add 21)"
            )
        return self
