"""The pure slot computation: due slots within the catch-up window, time zones and DST, and what
the concurrency policy does. No broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.slots import Cron, Skip, plan, task_id_for


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_next_slot_in_a_time_zone() -> None:
    # 09:00 on Mondays in Chicago is 15:00 UTC in winter (CST, -6), 14:00 in summer (CDT, -5).
    weekly = Cron("0 9 * * 1", "America/Chicago")
    assert weekly.next_after(utc(2026, 12, 2, 0, 0)) == utc(2026, 12, 7, 15, 0)
    assert weekly.next_after(utc(2026, 7, 1, 0, 0)) == utc(2026, 7, 6, 14, 0)


def test_spring_forward_fires_the_missing_time_once_after_the_gap() -> None:
    nightly = Cron("30 2 * * *", "America/Chicago")  # 02:30 does not exist on 2026-03-08
    slots = nightly.between(utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0), limit=10)
    assert slots == [utc(2026, 3, 7, 8, 30), utc(2026, 3, 8, 8, 0), utc(2026, 3, 9, 7, 30)]


def test_fall_back_fires_a_fixed_time_once_and_an_hourly_job_twice() -> None:
    nightly = Cron("30 1 * * *", "America/Chicago")  # 01:30 happens twice on 2026-11-01
    slots = nightly.between(utc(2026, 10, 31, 12, 0), utc(2026, 11, 2, 12, 0), limit=10)
    assert slots == [utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 7, 30)]
    hourly = Cron("30 * * * *", "America/Chicago")
    repeated = hourly.between(utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 8, 0), limit=10)
    assert repeated == [utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 7, 30)]


def test_seconds_field() -> None:
    every_two = Cron("*/2 * * * * *")
    assert every_two.between(utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 7), limit=10) == [
        utc(2026, 1, 1, 0, 0, s) for s in (2, 4, 6)
    ]


def test_task_id_is_the_slot_in_utc() -> None:
    slot = datetime(2026, 12, 7, 9, 0, tzinfo=Cron("* * * * *", "America/Chicago")._zone)
    assert task_id_for("weekly-report", slot) == "weekly-report-2026-12-07T15:00:00Z"


MINUTELY = Cron("* * * * *")
NOW = utc(2026, 1, 1, 12, 0, 30)


def test_due_slots_since_the_last_one_fire_in_order() -> None:
    result = plan(
        MINUTELY,
        now=NOW,
        last_slot=utc(2026, 1, 1, 11, 57),
        since=utc(2026, 1, 1),
        window_s=300,
        policy="allow",
        active=True,
    )
    assert result.fire == [utc(2026, 1, 1, 11, 58), utc(2026, 1, 1, 11, 59), utc(2026, 1, 1, 12)]
    assert (result.skip, result.missed, result.last_slot) == ([], False, utc(2026, 1, 1, 12))


def test_nothing_due_changes_nothing() -> None:
    result = plan(
        MINUTELY,
        now=NOW,
        last_slot=utc(2026, 1, 1, 12),
        since=utc(2026, 1, 1),
        window_s=300,
        policy="allow",
        active=False,
    )
    assert not result.changed
    assert result.last_slot == utc(2026, 1, 1, 12)


def test_slots_older_than_the_window_are_missed_the_others_fire() -> None:
    result = plan(
        MINUTELY,
        now=NOW,
        last_slot=utc(2026, 1, 1, 10),
        since=utc(2026, 1, 1),
        window_s=120,
        policy="allow",
        active=False,
    )
    assert result.missed
    assert result.fire == [utc(2026, 1, 1, 11, 59), utc(2026, 1, 1, 12)]


def test_everything_missed_moves_past_the_missed_slots() -> None:
    result = plan(
        Cron("0 * * * *"),
        now=NOW,
        last_slot=utc(2026, 1, 1, 9),
        since=utc(2026, 1, 1),
        window_s=10,
        policy="allow",
        active=False,
    )
    assert (result.fire, result.missed, result.last_slot) == ([], True, utc(2026, 1, 1, 12))


def test_a_new_schedule_starts_after_it_was_applied() -> None:
    result = plan(
        MINUTELY,
        now=NOW,
        last_slot=None,
        since=utc(2026, 1, 1, 11, 59, 10),
        window_s=300,
        policy="allow",
        active=False,
    )
    assert result.fire == [utc(2026, 1, 1, 12)]


def test_forbid_skips_while_a_run_is_active() -> None:
    args = dict(now=NOW, last_slot=utc(2026, 1, 1, 11, 58), since=utc(2026, 1, 1), window_s=300)
    busy = plan(MINUTELY, policy="forbid", active=True, **args)  # type: ignore[arg-type]
    assert busy.fire == []
    assert busy.skip == [
        Skip(utc(2026, 1, 1, 11, 59), "forbid"),
        Skip(utc(2026, 1, 1, 12), "forbid"),
    ]
    idle = plan(MINUTELY, policy="forbid", active=False, **args)  # type: ignore[arg-type]
    assert idle.fire == [utc(2026, 1, 1, 11, 59)]
    assert idle.skip == [Skip(utc(2026, 1, 1, 12), "forbid")]
    allow = plan(MINUTELY, policy="allow", active=True, **args)  # type: ignore[arg-type]
    assert len(allow.fire) == 2


def test_suspended_decides_nothing_and_resumes_within_the_window() -> None:
    args = dict(since=utc(2026, 1, 1), window_s=90, policy="allow", active=False)
    last = utc(2026, 1, 1, 11, 50)
    held = plan(MINUTELY, now=NOW, last_slot=last, suspended=True, **args)  # type: ignore[arg-type]
    assert not held.changed and held.last_slot == last
    resumed = plan(MINUTELY, now=NOW, last_slot=last, **args)  # type: ignore[arg-type]
    assert resumed.missed and resumed.fire == [utc(2026, 1, 1, 11, 59), utc(2026, 1, 1, 12)]


def test_limit_bounds_one_evaluation() -> None:
    result = plan(
        Cron("* * * * * *"),
        now=NOW,
        last_slot=NOW - timedelta(seconds=250),
        since=utc(2026, 1, 1),
        window_s=300,
        policy="allow",
        active=False,
        limit=100,
    )
    assert len(result.fire) == 100
    assert result.last_slot == NOW - timedelta(seconds=150)
