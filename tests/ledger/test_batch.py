"""What the ingest loop makes of one poll, without Kafka or a database (`ledger.batch`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.batch import (
    HeadsCache,
    Part,
    dead_letter_event,
    decode_records,
    dlq_topic,
    prepare_parts,
    split,
)
from ledger.plan import incoming
from tests.ledger.conftest import task_events
from topics.codec import encode
from topics.messages import TaskCompleted

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def test_records_decode_in_order_with_their_trace_context_and_bad_ones_are_dead() -> None:
    events = task_events("t-1")[:2]
    result = TaskCompleted(task_id="t-1", system="research", output="done")
    records = [
        FakeRecord("events", 0, 10, b"t-1", encode(events[0]), [("traceparent", TRACEPARENT)]),
        FakeRecord("events", 0, 11, b"t-1", b"{not json"),
        FakeRecord("events", 0, 12, b"t-1", encode(events[1]), [("content-type", b"x")]),
        FakeRecord("results", 1, 3, b"t-1", encode(result)),
    ]
    items, dead = decode_records(records, "results")
    assert [i.offset for i in items] == [10, 12, 3]
    assert items[0].trace == (("traceparent", TRACEPARENT),) and items[1].trace == ()
    assert items[2].event.type == "task.result"
    assert [(d.record.offset, "not valid JSON" in d.reason) for d in dead] == [(11, True)]


def test_a_batch_splits_into_task_disjoint_parts_that_keep_arrival_order() -> None:
    items = [incoming(e) for n in range(6) for e in task_events(f"t-{n}")]
    parts = split(items, 2)
    assert 1 <= len(parts) <= 2
    tasks = [{i.event.task_id for i in p.items} for p in parts]
    assert len(tasks) == 1 or not tasks[0] & tasks[1]
    for part in parts:
        positions = [items.index(i) for i in part.items]
        assert positions == sorted(positions)
    assert sum(len(p.items) for p in parts) == len(items)
    assert split(items[:3], 2) == [Part(items[:3])]  # too small to split
    assert split([], 2) == []


def test_parts_are_prepared_on_the_heads_the_cache_learnt() -> None:
    items = [incoming(e) for e in task_events("t-p")]
    cache = HeadsCache()
    assert cache.unknown([Part(items)]) == ["t-p"]
    first = prepare_parts([Part(items[:4])], cache.heads, cache)
    assert first[0].prepared is not None and cache.unknown([Part(items)]) == []
    second = prepare_parts([Part(items[4:])], cache.heads, cache)
    assert second[0].prepared is not None
    assert second[0].prepared.plan.links[0].seq == 5
    assert second[0].prepared.plan.bases["t-p"] == first[0].prepared.plan.heads["t-p"]


def test_the_heads_cache_forgets_its_oldest_tenth_when_full() -> None:
    cache = HeadsCache(size=10)
    cache.remember({f"t-{n}": (1, "h") for n in range(11)})
    assert len(cache.heads) == 9 and "t-0" not in cache.heads and "t-10" in cache.heads


def test_a_dead_record_becomes_an_event_of_the_task_its_key_names() -> None:
    note = dead_letter_event(FakeRecord("events", 2, 5, b"t-9", b"x"), "not valid JSON")
    assert note is not None
    assert (note.event.type, note.event.task_id) == ("message.dead_lettered", "t-9")
    assert note.event.event_id == "dlq:events:2:5"
    assert note.event.data["dlq_topic"] == dlq_topic("events") == "events.dlq"
    assert dead_letter_event(FakeRecord("events", 2, 6, None, b"x"), "bad") is None
    assert dead_letter_event(FakeRecord("events", 2, 7, b"\xff", b"x"), "bad") is None
