"""The offset tracker: what a partition may commit while its records complete in any order."""

from __future__ import annotations

import random

import pytest

from actors.offsets import OffsetTracker


def test_nothing_is_committable_until_the_oldest_record_completes() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.take(offset)
    tracker.complete(6)
    tracker.complete(7)
    assert tracker.committable() == []
    assert (tracker.held, tracker.running) == (3, 1)
    tracker.complete(5)
    assert tracker.committable() == [5, 6, 7]


def test_the_prefix_stops_at_the_first_record_not_completed() -> None:
    tracker = OffsetTracker()
    for offset in range(6):
        tracker.take(offset)
    for offset in (0, 1, 3, 4):
        tracker.complete(offset)
    assert tracker.committable() == [0, 1]
    tracker.committed(1)
    assert tracker.committable() == []
    assert tracker.held == 4
    tracker.complete(2)
    assert tracker.committable() == [2, 3, 4]
    tracker.committed(4)
    assert (tracker.held, tracker.running) == (1, 1)


def test_offsets_with_gaps_are_contiguous_in_the_order_taken() -> None:
    # transaction markers take offsets: the records of a partition are 0, 2, 5
    tracker = OffsetTracker()
    for offset in (0, 2, 5):
        tracker.take(offset)
    tracker.complete(2)
    tracker.complete(0)
    assert tracker.committable() == [0, 2]


def test_a_commit_through_a_record_not_completed_is_refused() -> None:
    tracker = OffsetTracker()
    tracker.take(0)
    tracker.take(1)
    tracker.complete(1)
    with pytest.raises(ValueError, match="not completed"):
        tracker.committed(1)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([("take", 3), ("take", 3)], "taken after"),
        ([("take", 3), ("take", 2)], "taken after"),
        ([("take", 3), ("complete", 4)], "not taken"),
        ([("take", 3), ("complete", 3), ("complete", 3)], "completed twice"),
        ([("complete", 0)], "not taken"),
    ],
)
def test_misuse_is_refused(steps: list[tuple[str, int]], message: str) -> None:
    tracker = OffsetTracker()
    with pytest.raises(ValueError, match=message):
        for name, offset in steps:
            getattr(tracker, name)(offset)


def test_any_completion_order_commits_every_offset_once_in_order() -> None:
    rng = random.Random(7)
    for _ in range(200):
        offsets = sorted(rng.sample(range(1000), rng.randint(1, 40)))
        tracker = OffsetTracker()
        for offset in offsets:
            tracker.take(offset)
        committed: list[int] = []
        for offset in rng.sample(offsets, len(offsets)):
            tracker.complete(offset)
            if rng.random() < 0.5 and (prefix := tracker.committable()):
                assert all(o not in committed for o in prefix)
                tracker.committed(prefix[-1])
                committed += prefix
        if prefix := tracker.committable():
            tracker.committed(prefix[-1])
            committed += prefix
        assert committed == offsets
        assert tracker.held == 0
