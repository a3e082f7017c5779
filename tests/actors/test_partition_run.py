"""The records of one partition in flight (no broker): records of different keys run at once,
records of one key run in order, and a transaction commits the completed prefix with all its
outputs, in offset order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from actors._partition import PartitionRun, RunConfig
from actors.records import Outbox, OutRecord, PartitionContext
from tests.helpers import wait_until

TP = TopicPartition("t.in", 0)


class FakeProducer:
    """Keeps each committed transaction: the values sent and the offset committed."""

    def __init__(self) -> None:
        self.transactions: list[tuple[list[bytes], int]] = []
        self._open: list[bytes] | None = None
        self._offset = -1

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._open = []
        yield
        self.transactions.append((self._open, self._offset))
        self._open = None

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> None:
        assert self._open is not None
        self._open.append(value)

    async def send_offsets_to_transaction(self, offsets: dict[Any, int], group: str) -> None:
        self._offset = offsets[TP]

    async def stop(self) -> None:
        pass


def record(offset: int, key: bytes, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TP.topic, 0, offset, 0, 0, key, value, None, 1, 1, [])


def run_with(handler: Any, producer: FakeProducer, failures: list[TopicPartition]) -> PartitionRun:
    def poisoned(rec: ConsumerRecord[bytes, bytes], ctx: PartitionContext, reason: str) -> Outbox:
        return Outbox(records=[OutRecord("t.dlq", None, b"dlq:" + reason.encode())])

    async def no_producer(tp: TopicPartition) -> Any:
        raise AssertionError("no commit fails here")

    config = RunConfig(
        group="g",
        handler=handler,
        on_poison=poisoned,
        changelog=None,
        max_attempts=3,
        retry_backoff_s=0.01,
        limit=lambda: 1_000_000,
        open_producer=no_producer,
        on_release=lambda: None,
        on_failure=failures.append,
        on_fenced=failures.append,
    )
    return PartitionRun(config, tp=TP, producer=producer, state={})  # type: ignore[arg-type]


async def test_keys_run_at_once_one_key_in_order_and_the_prefix_commits_together() -> None:
    gates = {offset: asyncio.Event() for offset in range(4)}
    running: list[int] = []

    async def handler(rec: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        running.append(rec.offset)
        await gates[rec.offset].wait()
        return Outbox(records=[OutRecord("t.out", rec.key, rec.value)])

    producer, failures = FakeProducer(), []
    run = run_with(handler, producer, failures)
    for offset, key in enumerate([b"a", b"b", b"a", b"c"]):
        run.take(record(offset, key, f"v{offset}".encode()))
    await wait_until(lambda: sorted(running) == [0, 1, 3], timeout=5, message="keys at once")
    # task a's second step waits for its first; b and c's complete, yet nothing commits
    gates[1].set()
    gates[3].set()
    await asyncio.sleep(0.05)
    assert 2 not in running and producer.transactions == [] and run.held == 4
    gates[0].set()
    await wait_until(lambda: 2 in running, timeout=5, message="a's next step")
    await wait_until(lambda: producer.transactions, timeout=5, message="the prefix")
    assert producer.transactions[0] == ([b"v0", b"v1"], 2)
    gates[2].set()
    await asyncio.wait_for(run.drained(), 5)
    assert producer.transactions[1:] == [([b"v2", b"v3"], 4)]
    assert failures == [] and run.held == 0
    await run.close()


async def test_a_state_change_is_seen_by_the_next_record_of_the_key_before_any_commit() -> None:
    seen: list[bytes | None] = []
    first_done = asyncio.Event()
    release = asyncio.Event()

    async def handler(rec: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        seen.append(ctx.state.get("k"))
        if rec.offset == 0:
            await release.wait()  # holds the prefix: nothing commits before offset 2 runs
        if rec.offset == 1:
            first_done.set()
            return Outbox(state={"k": b"arrived"})
        return Outbox()

    producer, failures = FakeProducer(), []
    run = run_with(handler, producer, failures)
    run.take(record(0, b"other", b"x"))
    run.take(record(1, b"t", b"x"))
    run.take(record(2, b"t", b"x"))
    await wait_until(lambda: len(seen) == 3, timeout=5, message="three runs")
    assert seen == [None, None, b"arrived"] and producer.transactions == []
    release.set()
    await asyncio.wait_for(run.drained(), 5)
    await run.close()


async def test_a_handler_that_keeps_failing_is_dead_lettered_in_its_place() -> None:
    attempts: list[int] = []

    async def handler(rec: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        if rec.value == b"boom":
            attempts.append(rec.offset)
            raise RuntimeError("broken")
        return Outbox(records=[OutRecord("t.out", rec.key, rec.value)])

    producer, failures = FakeProducer(), []
    run = run_with(handler, producer, failures)
    run.take(record(0, b"a", b"boom"))
    run.take(record(1, b"b", b"fine"))
    await asyncio.wait_for(run.drained(), 5)
    values = [v for sent, _ in producer.transactions for v in sent]
    assert attempts == [0, 0, 0]
    assert values[0].startswith(b"dlq:the handler failed 3 attempts: RuntimeError: broken")
    assert values[1:] == [b"fine"] and producer.transactions[-1][1] == 2
    assert failures == []
    await run.close()
