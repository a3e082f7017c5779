"""The event factory, the event-id scheme and the dead-letter builders (no broker needed)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest

from topics.dlq import dead_letter, dead_lettered_event, dlq_topic
from topics.messages import EventType, StepFailedData, event, event_id_of


def test_event_ids_join_their_parts_and_are_random_without_parts() -> None:
    assert event_id_of("t1", "s1", EventType.STEP_FAILED) == "t1:s1:step.failed"
    assert event_id_of("dlq", "podium.tasks", 0, 42) == "dlq:podium.tasks:0:42"
    assert event_id_of() != event_id_of()


def test_the_factory_wraps_a_payload_or_a_data_object() -> None:
    ev = event(StepFailedData(error="boom"), event_id="e", task_id="t", agent="a")
    assert (ev.type, ev.data["error"], ev.agent) == ("step.failed", "boom", "a")
    raw = event({"output": "x"}, type="task.result", event_id="r", task_id="t")
    assert (raw.type, raw.data) == ("task.result", {"output": "x"})
    with pytest.raises(TypeError):
        event({"output": "x"}, event_id="r", task_id="t")


def test_check_validates_the_envelope() -> None:
    payload = StepFailedData(error="boom")
    assert event(payload, event_id="e", task_id="not a task id").task_id == "not a task id"
    with pytest.raises(msgspec.ValidationError, match="task_id"):
        event(payload, event_id="e", task_id="not a task id", check=True)


@dataclass
class _Record:
    topic: str = "podium.tasks"
    partition: int = 1
    offset: int = 7
    key: bytes | None = b"t1"
    value: bytes | None = b"{not json"
    headers: list[tuple[str, bytes]] | None = None


def test_a_dead_letter_keeps_the_record_and_its_event_is_keyed_by_position() -> None:
    record = _Record(headers=[("traceparent", b"00-abc")])
    letter = dead_letter(record, "not valid JSON", service="ledger")
    assert (letter.topic, letter.partition, letter.offset, letter.value) == (
        "podium.tasks",
        1,
        7,
        b"{not json",
    )
    assert letter.headers == {"traceparent": "00-abc"} and letter.service == "ledger"
    ev = dead_lettered_event(
        record, "not valid JSON", dlq=dlq_topic(record.topic), task_id="t1", source="ledger"
    )
    assert ev.event_id == "dlq:podium.tasks:1:7" and ev.type == "message.dead_lettered"
    assert ev.data["dlq_topic"] == "podium.tasks.dlq"


def test_the_typed_accessor_reads_the_payload_back() -> None:
    ev = event(StepFailedData(error="boom", retryable=True), event_id="e", task_id="t")
    assert ev.payload(StepFailedData) == StepFailedData(error="boom", retryable=True)
    assert msgspec.json.decode(msgspec.json.encode(ev), type=type(ev)).payload(
        StepFailedData
    ) == StepFailedData(error="boom", retryable=True)
