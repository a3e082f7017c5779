"""The pure part of the scheduler: which slots of a schedule are due, and what to do with each.

No Kafka here. A slot is an instant (aware, UTC) at which the cron expression matches the wall
clock of the schedule's time zone. Across daylight-saving changes: a wall-clock time that does
not exist (spring forward) fires at the first instant after the gap, once; a wall-clock time that
happens twice (fall back) fires once, at its first occurrence, unless the hour field is `*` (a
job that runs every hour runs in both of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter

Policy = Literal["forbid", "allow"]


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression (5 fields, or 6 with the second first) in an IANA time zone."""

    expression: str
    time_zone: str = "UTC"

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def _fields(self) -> list[str]:
        return self.expression.split()

    def _every_hour(self) -> bool:
        fields = self._fields
        return fields[2 if len(fields) == 6 else 1] == "*"

    def next_after(self, after: datetime) -> datetime:
        """The first slot strictly after `after`."""
        it = croniter(
            self.expression,
            after.astimezone(self._zone),
            second_at_beginning=len(self._fields) == 6,
        )
        while True:
            slot: datetime = it.get_next(datetime)
            if slot.fold == 1 and not self._every_hour() and _happens_twice(slot):
                continue  # the repeated hour of a fall-back: fired at its first occurrence
            return slot.astimezone(UTC)

    def between(self, after: datetime, until: datetime, *, limit: int) -> list[datetime]:
        """The slots in (after, until], at most `limit` of them (the earliest)."""
        out: list[datetime] = []
        current = after
        while len(out) < limit:
            slot = self.next_after(current)
            if slot > until:
                break
            out.append(slot)
            current = slot
        return out


def _happens_twice(local: datetime) -> bool:
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def task_id_for(schedule: str, slot: datetime) -> str:
    """`<schedule>-<slot in UTC, ISO 8601>`: the same slot always gets the same task id."""
    return f"{schedule}-{slot.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


@dataclass(frozen=True, slots=True)
class Skip:
    slot: datetime
    reason: Literal["forbid"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do at one evaluation of a schedule."""

    fire: list[datetime] = field(default_factory=list)
    skip: list[Skip] = field(default_factory=list)
    missed: bool = False
    """Slots older than the catch-up window were due and are dropped."""
    last_slot: datetime | None = None
    """The latest slot decided (fired, skipped or missed); the next evaluation starts after it."""

    @property
    def changed(self) -> bool:
        return bool(self.fire or self.skip or self.missed)


def plan(
    cron: Cron,
    *,
    now: datetime,
    last_slot: datetime | None,
    since: datetime,
    window_s: float,
    policy: Policy,
    active: bool,
    suspended: bool = False,
    limit: int = 100,
) -> Plan:
    """The decisions for the slots due at `now`.

    Due: the slots after `last_slot` (or after `since`, when the schedule applied then has never
    been decided), up to `now`. Those older than `window_s` (Orloj's
    `starting_deadline_seconds`) are missed; the others fire in order, except that under
    `forbid` a slot is skipped while a run of the schedule is active (the one just fired
    included). A suspended schedule decides nothing: on resume, the slots still within the
    window fire, as Orloj does.
    """
    if suspended:
        return Plan(last_slot=last_slot)
    begin = last_slot if last_slot is not None else since
    start = begin
    oldest = now - timedelta(seconds=window_s)
    missed = False
    if start < oldest:
        first = cron.next_after(start)
        missed = first < oldest
        start = oldest - timedelta(microseconds=1)
    due = cron.between(start, now, limit=limit)
    if not due:
        missed_until = _last_before(cron, oldest, begin) if missed else None
        return Plan(missed=missed, last_slot=missed_until or last_slot)
    fire: list[datetime] = []
    skip: list[Skip] = []
    running = active
    for slot in due:
        if policy == "forbid" and running:
            skip.append(Skip(slot, "forbid"))
            continue
        fire.append(slot)
        running = True
    return Plan(fire=fire, skip=skip, missed=missed, last_slot=due[-1])


def _last_before(cron: Cron, oldest: datetime, after: datetime) -> datetime | None:
    """The latest slot in (after, oldest) when there is one: what a missed stretch ends with."""
    it = croniter(
        cron.expression,
        oldest.astimezone(ZoneInfo(cron.time_zone)),
        is_prev=True,
        second_at_beginning=len(cron.expression.split()) == 6,
    )
    slot: datetime = it.get_prev(datetime)
    slot = slot.astimezone(UTC)
    return slot if slot > after else None
