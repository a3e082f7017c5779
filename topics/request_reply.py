"""Request-reply over Kafka: one reusable client per requester instance.

Every requester instance owns a reply topic (`TopicNames.replies(<instance id>)`, one partition,
created on start). A single reply consumer, with no group and a manual assignment, reads it from
its end and resolves the waiting futures by correlation id. Requests carry the `reply_to` and
`correlation_id` headers (names in `topics.codec`); the replier copies the correlation id onto its
answer. Every request has a deadline; `stop()` fails the requests still waiting.

FastStream's `broker.request()` only works with its in-memory test client, so this is plain
aiokafka. Replies are read with `read_uncommitted`: the replier does not use transactions, so the
committed view would be the same, only later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from podium.core.errors import TransientError
from podium.core.settings import KafkaSettings
from topics.codec import HEADER_CORRELATION_ID, HEADER_REPLY_TO, header
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.names import TopicNames

log = logging.getLogger(__name__)

REPLY_FETCH_MAX_WAIT_MS = 5
"""How long the reply consumer's fetch waits at most on an idle topic (aiokafka's default is
500 ms). The broker answers a fetch as soon as a reply arrives; this bounds the idle poll."""


class RequestTimeout(TransientError):
    """No reply arrived before the request's deadline."""


class RequestReplyClosed(TransientError):
    """The client stopped (or was never started) while the request waited."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply record: its value, key and headers."""

    value: bytes | None
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class RequestReplyClient:
    """Sends requests and waits for their replies on this instance's own reply topic.

    One instance serves any number of concurrent requests; create one per process (or actor
    replica), `await start()` once, and `await stop()` at shutdown.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        *,
        instance_id: str,
        fetch_max_wait_ms: int = REPLY_FETCH_MAX_WAIT_MS,
    ) -> None:
        self._kafka = kafka
        self.instance_id = instance_id
        self.reply_topic = names.replies(instance_id)
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._closed = False

    @property
    def started(self) -> bool:
        return self._reader is not None and not self._closed

    async def start(self) -> None:
        """Create the reply topic, position the reply consumer at its end, start reading."""
        await ensure_topics(self._kafka, [self.reply_topic], partitions=1)
        self._producer = make_producer(self._kafka)
        self._consumer = make_consumer(
            self._kafka,
            group_id=None,
            isolation_level="read_uncommitted",
            auto_offset_reset="latest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        try:
            await self._producer.start()
            await self._consumer.start()
            partition = TopicPartition(self.reply_topic, 0)
            self._consumer.assign([partition])
            # Resolve the position now: a reply to the first request must not be skipped by a
            # late "latest" lookup. Older replies (a previous process with this id) are skipped.
            await self._consumer.seek_to_end(partition)
            await self._consumer.position(partition)
        except BaseException:
            await self._close_clients()
            raise
        self._closed = False
        self._reader = asyncio.create_task(self._read_replies(), name=f"replies:{self.reply_topic}")

    async def stop(self) -> None:
        """Stop reading; every request still waiting fails with `RequestReplyClosed`."""
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._fail_pending(RequestReplyClosed("the request-reply client stopped"))
        await self._close_clients()

    async def request(
        self,
        topic: str,
        *,
        key: bytes,
        value: bytes,
        timeout_s: float,
        headers: Sequence[tuple[str, bytes]] = (),
        correlation_id: str | None = None,
    ) -> Reply:
        """Send one request and return the reply record, or raise within `timeout_s`.

        Raises `RequestTimeout` when no reply arrives in time and `RequestReplyClosed` when the
        client is not running; transport errors of the producer propagate as they are.
        """
        if self._producer is None or self._closed or self._reader is None:
            raise RequestReplyClosed("the request-reply client is not started")
        cid = correlation_id or uuid.uuid4().hex
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[cid] = future
        all_headers = [
            *headers,
            (HEADER_REPLY_TO, self.reply_topic.encode()),
            (HEADER_CORRELATION_ID, cid.encode()),
        ]
        try:
            async with asyncio.timeout(timeout_s):
                await self._producer.send(topic, value=value, key=key, headers=all_headers)
                return await future
        except TimeoutError:
            raise RequestTimeout(
                f"no reply on {self.reply_topic} within {timeout_s:.3f} s (request {cid})"
            ) from None
        finally:
            self._pending.pop(cid, None)
            if not future.done():
                future.cancel()

    async def _read_replies(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reply consumer of %s failed; retrying", self.reply_topic)
                await asyncio.sleep(0.1)
                continue
            for records in batches.values():
                for record in records:
                    cid = header(record.headers, HEADER_CORRELATION_ID)
                    future = self._pending.get(cid) if cid else None
                    if future is None:
                        log.debug("reply %s has no waiting request (late or foreign)", cid)
                    elif not future.done():
                        future.set_result(
                            Reply(
                                value=record.value,
                                key=record.key,
                                headers=tuple(record.headers or ()),
                            )
                        )

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def _close_clients(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        self._consumer = None
        self._producer = None
