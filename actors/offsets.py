"""Completion tracking of one partition: which input offsets may be committed.

Records of a partition are taken in offset order, run concurrently and complete in any order.
The input offset committed with a transaction must not pass a record that has not completed,
so a transaction commits the contiguous prefix of completed records: `OffsetTracker` knows the
records taken in (in order; offsets may have gaps, e.g. transaction markers), the completed ones,
and hands out that prefix. Pure: no Kafka, no I/O.
"""

from __future__ import annotations

from collections import deque


class OffsetTracker:
    """The taken, completed and not yet committed offsets of one partition."""

    def __init__(self) -> None:
        self._taken: deque[int] = deque()
        self._completed: set[int] = set()

    def take(self, offset: int) -> None:
        """A record at `offset` is taken in (offsets increase)."""
        if self._taken and offset <= self._taken[-1]:
            raise ValueError(f"offset {offset} taken after {self._taken[-1]}")
        self._taken.append(offset)

    def complete(self, offset: int) -> None:
        """The record at `offset` is done: its outputs may be committed."""
        if offset in self._completed:
            raise ValueError(f"offset {offset} completed twice")
        if not self._taken or offset < self._taken[0] or offset > self._taken[-1]:
            raise ValueError(f"offset {offset} was not taken")
        self._completed.add(offset)

    def committable(self) -> list[int]:
        """The completed offsets at the head, in order: what the next transaction commits
        (its input offset is the last one + 1). Empty when the oldest record is not done."""
        prefix: list[int] = []
        for offset in self._taken:
            if offset not in self._completed:
                break
            prefix.append(offset)
        return prefix

    def committed(self, through: int) -> None:
        """Everything up to `through` (a completed offset) is committed: forget it."""
        if through not in self._completed:
            raise ValueError(f"offset {through} is not completed")
        while self._taken and self._taken[0] <= through:
            offset = self._taken.popleft()
            if offset not in self._completed:
                raise ValueError(f"offset {offset} is committed but not completed")
            self._completed.discard(offset)

    @property
    def held(self) -> int:
        """Records taken in and not committed (running or completed)."""
        return len(self._taken)

    @property
    def running(self) -> int:
        """Records taken in and not completed."""
        return len(self._taken) - len(self._completed)
