"""The manifests records a reader skipped: a log line each, and a dead letter on
`<p>.manifests.dlq` (`topics.dlq`, as every consumer builds them).

Every service's watcher reads the same topic and rejects the same records, so the dead-letter
topic is compacted and keyed by the rejected record's position (`<topic>:<partition>:<offset>`):
each rejection is kept once however many readers reported it. A watcher reports a record once.
Failing to write a dead letter is logged and never stops the watcher (the log line stays).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from manifests._topic import Rejection, log_rejection
from podium.core.settings import KafkaSettings
from topics.codec import encode, headers_for
from topics.dlq import dead_letter
from topics.kafka import ensure_topics, make_producer
from topics.names import TopicNames

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 15.0
"""At most this long for the dead letters of one batch, so a watcher is never held up for long."""


class RejectionReporter:
    def __init__(self, kafka: KafkaSettings, names: TopicNames, *, service: str) -> None:
        self._kafka = kafka
        self._names = names
        self._service = service
        self._reported: set[tuple[str, int, int]] = set()

    async def report(self, rejections: Sequence[Rejection]) -> None:
        """Log and dead-letter the rejections not reported yet."""
        new: list[Rejection] = []
        for rejection in rejections:
            if rejection.position in self._reported:
                continue
            self._reported.add(rejection.position)
            log_rejection(rejection)
            new.append(rejection)
        if new:
            await self._send(new)

    async def _send(self, rejections: Sequence[Rejection]) -> None:
        topic = self._names.manifests_dlq
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ensure_topics(self._kafka, [topic], compacted=[topic], partitions=1)
                producer = make_producer(self._kafka)
                try:
                    await producer.start()
                    for rejection in rejections:
                        letter = dead_letter(
                            rejection.message, rejection.reason, service=self._service
                        )
                        await producer.send_and_wait(
                            topic,
                            encode(letter),
                            key=":".join(map(str, rejection.position)).encode(),
                            headers=headers_for(letter),
                        )
                finally:
                    await producer.stop()
        except Exception:
            log.exception("could not write %d dead letters to %s", len(rejections), topic)
