"""What the scheduler remembers of each schedule, on a compacted topic keyed by schedule name.

`<prefix>.scheduler.state` has as many partitions as the scheduler's consumer group spreads
over its replicas; a schedule lives on partition `crc32(name) % partitions`. Its record is
written in the same Kafka transaction as the tasks it starts, so the state and the firing are one.
"""

from __future__ import annotations

import logging
import zlib
from datetime import datetime

import msgspec

from topics.names import TopicNames

log = logging.getLogger(__name__)


def state_topic(names: TopicNames) -> str:
    return f"{names.prefix}.scheduler.state"


def scheduler_group(names: TopicNames) -> str:
    return f"{names.prefix}.scheduler"


def partition_of(schedule: str, partitions: int) -> int:
    return zlib.crc32(schedule.encode()) % partitions


class Run(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    slot: datetime
    fired_at: datetime
    status: str = "active"
    """active | succeeded | failed | expired"""
    finished_at: datetime | None = None


class ScheduleState(msgspec.Struct, frozen=True, kw_only=True):
    schedule: str
    since: datetime
    """When the scheduler first saw the schedule (or when it was applied): no slot before it."""
    last_slot: datetime | None = None
    last_fired_at: datetime | None = None
    last_task_id: str = ""
    active: list[Run] = []
    succeeded: list[Run] = []
    failed: list[Run] = []

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, value: bytes) -> ScheduleState:
        return msgspec.json.decode(value, type=cls)


def decode_states(latest: dict[str, bytes]) -> dict[str, ScheduleState]:
    """The schedules' states from the state topic's latest values; an unreadable one is logged
    and left out (the scheduler then treats its schedule as new)."""
    states: dict[str, ScheduleState] = {}
    for key, value in latest.items():
        if key.startswith("task:"):
            continue  # an applied Task's runs (`scheduler.runs`)
        try:
            states[key] = ScheduleState.decode(value)
        except ValueError:
            log.error("ignoring an unreadable state record of schedule %s", key)
    return states
