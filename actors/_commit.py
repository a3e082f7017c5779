"""One transaction of the consume-transform-produce loop: the outboxes of a run of input records,
their changelog records and the input offset after them, produced atomically."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, TopicPartition

from actors.records import Outbox, OutRecord


def produced(outbox: Outbox, changelog: str | None, partition: int) -> list[OutRecord]:
    """Every record the commit of `outbox` produces (its changelog records included)."""
    records = list(outbox.records)
    if changelog is not None:
        records += [
            OutRecord(changelog, key.encode(), value, partition=partition)
            for key, value in outbox.state.items()
        ]
    return records


async def commit(
    producer: AIOKafkaProducer,
    outboxes: list[Outbox],
    *,
    changelog: str | None,
    group: str,
    tp: TopicPartition,
    offset: int,
) -> None:
    """Produce `outboxes` in order (and their state changes to `changelog`) and commit `offset`
    for `group`, in one transaction of `producer`."""
    async with producer.transaction():
        for outbox in outboxes:
            for out in produced(outbox, changelog, tp.partition):
                await producer.send(
                    out.topic,
                    key=out.key,
                    value=out.value,
                    headers=out.headers,
                    partition=out.partition,
                )
        await producer.send_offsets_to_transaction({tp: offset}, group)
