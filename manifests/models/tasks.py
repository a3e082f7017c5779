"""`Task` (as a template) and `TaskSchedule`: work started by a trigger instead of a caller.

A `Task` of `mode: template` is the task a `TaskSchedule` starts on each cron slot (Orloj's
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


class TaskRetry(_Model):
    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff: float = Field(default=0.0, ge=0, le=7 * 86400)

    _backoff = field_validator("backoff", mode="before")(parse_duration)


class MessageRetry(_Model):
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff: float | None = Field(default=None, ge=0, le=7 * 86400)
    max_backoff: Seconds = 86400.0
    jitter: Literal["none", "full", "equal"] = "full"
    non_retryable: list[str] = []

    _durations = field_validator("backoff", "max_backoff", mode="before")(parse_duration)


class TaskRequirements(_Model):
    region: str = ""
    gpu: bool = False
    model: str = ""


class TaskSpec(_Model):
    system: Name
    mode: Literal["run", "template"] = "run"
    input: dict[str, str] = {}
    priority: str = "normal"
    max_turns: int = Field(default=0, ge=0)
    retry: TaskRetry = TaskRetry()
    message_retry: MessageRetry = MessageRetry()
    requirements: TaskRequirements = TaskRequirements()

    @field_validator("mode")
    @classmethod
    def _templates_only(cls, value: str) -> str:
        if value == "run":
            raise ValueError(
                "a Task of mode run cannot be applied yet: start it with `podium run SYSTEM "
                "--input ...`, or set `mode: template` for a TaskSchedule to start it"
            )
        return value


class Task(ResourceBase):
    """A task template (`mode: template`): what a TaskSchedule starts on each slot."""

    kind_name: ClassVar[str] = "Task"
    kind: Literal["Task"]
    spec: TaskSpec


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
