"""Call-time usage events (`model.called`, `tool.called`, `step.started`): produced outside the
step's transaction, so money spent is recorded even if the step re-runs (the ledger dedupes)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from podium.core import tracing
from podium.core.settings import KafkaSettings
from topics.codec import encode, headers_for
from topics.kafka import make_producer
from topics.messages import Payload, Step, event, event_id_of
from topics.names import TopicNames


class UsageEmitter:
    """Produces call-time usage events with an idempotent, non-transactional producer."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames, *, source: str) -> None:
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        """Made by `start`: an emitter that never starts holds no client."""
        self._names = names
        self._source = source

    async def start(self) -> None:
        self._producer = make_producer(self._kafka)
        await self._producer.start()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def emit(
        self, step: Step, payload: Payload, *, agent: str, event_id: str | None = None
    ) -> None:
        trace_id, span_id = tracing.current_ids()
        ev = event(
            payload,
            event_id=event_id or event_id_of(),
            task_id=step.task_id,
            system=step.system,
            agent=agent,
            step_id=step.step_id,
            attempt=step.attempt,
            trace_id=trace_id,
            span_id=span_id,
            source=self._source,
        )
        if self._producer is None:
            raise RuntimeError("UsageEmitter.emit before start")
        await self._producer.send_and_wait(
            self._names.events,
            key=step.task_id.encode(),
            value=encode(ev),
            headers=headers_for(ev, tracing.trace_headers()),
        )
