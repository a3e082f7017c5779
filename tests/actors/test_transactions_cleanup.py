"""The transactional loop closes every producer it started, on every path (no broker).

A partition's producer is started before its state is restored. When the restore fails, when
another partition of the same assignment fails, when the assignment is cancelled (the consumer
stops mid-rebalance) or when a revoke is cancelled while it waits for in-flight work, every
producer that was made is stopped again: none is left for aiokafka's `Unclosed AIOKafkaProducer`.
Nor is a partition's commit loop left pending when the processor stops during a rebalance.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

import actors.transactions as transactions
from actors.records import Handler, Outbox
from actors.transactions import TransactionalProcessor
from podium.core.settings import KafkaSettings


class FakeProducer:
    """Records start and stop; `start` can be made to fail."""

    def __init__(self, fail_start: bool = False) -> None:
        self.fail_start = fail_start
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        if self.fail_start:
            raise ConnectionError("broker unreachable")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


class RestoreFailed(Exception):
    pass


def processor(
    monkeypatch: pytest.MonkeyPatch,
    producers: list[FakeProducer],
    handler: Handler | None = None,
    **fakes: Any,
) -> TransactionalProcessor:
    """A processor whose producers are `FakeProducer`s (collected in `producers`)."""

    def make_producer(*args: Any, **kwargs: Any) -> FakeProducer:
        producer = FakeProducer(**fakes)
        producers.append(producer)
        return producer

    monkeypatch.setattr(transactions, "make_producer", make_producer)

    async def instant(*args: Any) -> Outbox:
        return Outbox()

    def on_poison(*args: Any) -> Outbox:
        return Outbox()

    return TransactionalProcessor(
        KafkaSettings(bootstrap="127.0.0.1:1"),
        topic="t.tasks",
        group="g",
        handler=handler or instant,
        on_poison=on_poison,
        max_record_bytes=1_000_000,
    )


TPS = [TopicPartition("t.tasks", p) for p in range(3)]


async def test_a_failed_restore_stops_every_producer_of_the_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producers: list[FakeProducer] = []
    proc = processor(monkeypatch, producers)

    async def restore(tp: TopicPartition) -> dict[str, bytes]:
        if tp.partition == 1:
            raise RestoreFailed(str(tp))
        return {}

    monkeypatch.setattr(proc, "_restore", restore)
    with pytest.raises(RestoreFailed):
        await proc._assign(TPS)
    assert len(producers) == 3
    assert all(p.stopped for p in producers), [(p.started, p.stopped) for p in producers]
    assert proc.assigned == [] and not proc.ready.is_set()


async def test_a_producer_that_fails_to_start_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    producers: list[FakeProducer] = []
    proc = processor(monkeypatch, producers, fail_start=True)
    with pytest.raises(ConnectionError):
        await proc._assign(TPS[:1])
    assert [p.stopped for p in producers] == [True]


async def test_a_cancelled_assignment_stops_every_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producers: list[FakeProducer] = []
    proc = processor(monkeypatch, producers)
    restoring = asyncio.Event()

    async def restore(tp: TopicPartition) -> dict[str, bytes]:
        if tp.partition == 2:
            restoring.set()
            await asyncio.Event().wait()  # a changelog that never ends
        return {}

    monkeypatch.setattr(proc, "_restore", restore)
    assigning = asyncio.create_task(proc._assign(TPS))
    await asyncio.wait_for(restoring.wait(), timeout=5)
    assigning.cancel()
    with pytest.raises(asyncio.CancelledError):
        await assigning
    assert len(producers) == 3
    assert all(p.stopped for p in producers), [(p.started, p.stopped) for p in producers]


async def test_an_assignment_opens_its_partitions_and_a_cancelled_revoke_still_closes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producers: list[FakeProducer] = []

    async def stuck(*args: Any) -> Outbox:
        await asyncio.Event().wait()  # a step that does not finish
        return Outbox()

    proc = processor(monkeypatch, producers, handler=stuck)
    await proc._assign(TPS)
    assert proc.assigned == TPS and proc.ready.is_set()
    assert all(p.started and not p.stopped for p in producers)

    # a partition busy with a record: the revoke waits for it (the grace period) ...
    proc._partitions[TPS[0]].take(
        ConsumerRecord(TPS[0].topic, 0, 7, 0, 0, b"t", b"v", None, 1, 1, [])
    )
    revoking = asyncio.create_task(proc._revoke(TPS))
    await asyncio.sleep(0.05)
    assert not revoking.done()
    # ... and is cancelled while it waits: the partitions are gone, so are their producers
    revoking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await revoking
    assert proc.assigned == []
    assert all(p.stopped for p in producers), [(p.started, p.stopped) for p in producers]


async def test_an_empty_assignment_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = processor(monkeypatch, [])
    await proc._assign([])
    assert proc.ready.is_set()


class RejoiningConsumer:
    """A consumer in the middle of a rebalance whose `stop` lets it finish, as aiokafka's does:
    its coordinator's close waits for a join under way, which calls `on_partitions_assigned`.
    The assignment starts with `start` (`join_at="start"`) or only when it stops."""

    def __init__(self, join_at: str) -> None:
        self.join_at = join_at
        self.listener: Any = None
        self.joining: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        if self.join_at == "start":
            self.joining = asyncio.create_task(self.listener.on_partitions_assigned(TPS))

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(timeout_ms / 1000)  # a poll that fetched nothing
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(TPS)

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def resume(self, *tps: TopicPartition) -> None:
        pass

    async def committed(self, tp: TopicPartition) -> int | None:
        return None

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        pass

    async def stop(self) -> None:
        self.stopping.set()
        if self.joining is None:
            self.joining = asyncio.create_task(self.listener.on_partitions_assigned(TPS))
        await self.joining


def commit_loops(group: str) -> list[asyncio.Task[Any]]:
    """The commit loops of `group`'s partition runs that are still pending."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(f"{group}[") and not t.done()]


@pytest.mark.parametrize("restored_by", ["the stop", "the consumer's stop"])
async def test_a_processor_stopped_mid_rebalance_closes_what_the_rebalance_opened(
    monkeypatch: pytest.MonkeyPatch, restored_by: str
) -> None:
    producers: list[FakeProducer] = []
    proc = processor(monkeypatch, producers)
    consumer = RejoiningConsumer(join_at="start")
    monkeypatch.setattr(transactions, "make_consumer", lambda *args, **kwargs: consumer)
    restoring, restored = asyncio.Event(), asyncio.Event()

    async def restore(tp: TopicPartition) -> dict[str, bytes]:
        restoring.set()
        await restored.wait()  # the changelog is still being read when the processor stops
        return {}

    monkeypatch.setattr(proc, "_restore", restore)
    stop = asyncio.Event()
    running = asyncio.create_task(proc.run(stop))
    await asyncio.wait_for(restoring.wait(), timeout=5)
    if restored_by == "the stop":
        restored.set()
        await asyncio.wait_for(proc.ready.wait(), timeout=5)
        stop.set()
    else:
        stop.set()
        await asyncio.wait_for(consumer.stopping.wait(), timeout=5)
        restored.set()
    await asyncio.wait_for(running, timeout=10)
    assert len(producers) == 3
    assert all(p.stopped for p in producers), [(p.started, p.stopped) for p in producers]
    assert proc.assigned == []
    assert commit_loops("g") == []


async def test_an_assignment_that_arrives_once_stopping_opens_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producers: list[FakeProducer] = []
    proc = processor(monkeypatch, producers)
    consumer = RejoiningConsumer(join_at="stop")
    monkeypatch.setattr(transactions, "make_consumer", lambda *args, **kwargs: consumer)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(proc.run(stop), timeout=10)
    assert producers == [] and proc.assigned == [] and commit_loops("g") == []
