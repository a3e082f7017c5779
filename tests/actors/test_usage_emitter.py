"""An actor that is built but never run holds no Kafka client (nothing to leak)."""

from __future__ import annotations

import gc
import warnings

from actors.usage_emitter import UsageEmitter
from podium.core.settings import KafkaSettings
from topics.names import TopicNames


def test_an_emitter_that_never_starts_leaves_no_unclosed_producer() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emitter = UsageEmitter(
            KafkaSettings(bootstrap="127.0.0.1:9"), TopicNames(), source="actor-test"
        )
        del emitter
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
