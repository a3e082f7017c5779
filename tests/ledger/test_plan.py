"""Planning a batch and its hash chains, without a database (`ledger.plan`, `ledger.chain`,
`ledger.store.prepare`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from ledger.chain import GENESIS, Break, StoredLink, canonical, link_hash, verify_chain
from ledger.plan import RESULT_EVENT, decode_result, incoming, plan_batch
from ledger.store import _agrees, event_rows, prepare
from tests.ledger.conftest import task_events
from topics.codec import encode
from topics.messages import Event, TaskCompleted

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_each_task_is_chained_from_genesis_in_arrival_order() -> None:
    a, b = task_events("t-a", start=AT), task_events("t-b", start=AT)
    batch = [incoming(e) for pair in zip(a, b, strict=True) for e in pair]
    plan = plan_batch(batch, set(), {})
    for task, events in (("t-a", a), ("t-b", b)):
        links = [link for link in plan.links if link.item.event.task_id == task]
        assert [link.item.event.event_id for link in links] == [e.event_id for e in events]
        assert [link.seq for link in links] == list(range(1, len(events) + 1))
        prev = GENESIS
        for link in links:
            assert link.prev_hash == prev
            assert link.hash == link_hash(prev, canonical(link.item.event))
            prev = link.hash
        assert plan.heads[task] == (len(events), prev)
        assert plan.bases[task] == (0, GENESIS)


def test_a_chain_continues_from_its_head_and_skips_what_is_stored() -> None:
    events = [incoming(e) for e in task_events("t-c", start=AT)]
    first = plan_batch(events[:5], set(), {})
    stored = {i.event.event_id for i in events[:5]}
    second = plan_batch(events[3:] + events[6:7], stored, first.heads)
    assert second.duplicates == 3  # two already stored, one repeated inside the batch
    assert second.bases["t-c"] == first.heads["t-c"]
    assert [link.seq for link in second.links] == list(range(6, len(events) + 1))
    assert second.links[0].prev_hash == first.heads["t-c"][1]


def test_tasks_and_spend_are_summed_and_the_status_follows_the_events() -> None:
    events = task_events("t-d", start=AT, cost=0.00125)
    plan = plan_batch([incoming(e) for e in events], set(), {})
    task = plan.tasks["t-d"]
    assert (task.status, task.output, task.events) == ("succeeded", "final answer", len(events))
    assert (task.model_calls, task.input_tokens, task.output_tokens) == (2, 200, 40)
    assert task.cost_usd == Decimal("0.00250")
    hour = AT.replace(minute=0, second=0, microsecond=0)
    spend = plan.spend[(hour, "research", "planner", "gpt-4o-mini")]
    assert (spend.calls, spend.cost_usd) == (1, Decimal("0.00125"))


def test_an_unpriced_call_is_counted_not_priced() -> None:
    plan = plan_batch([incoming(e) for e in task_events("t-e", start=AT, cost=None)], set(), {})
    assert (plan.tasks["t-e"].unpriced_calls, plan.tasks["t-e"].cost_usd) == (2, Decimal(0))


def test_a_call_with_negative_cost_is_chained_but_changes_no_totals() -> None:
    events = task_events("t-neg", start=AT, cost=-5.0)
    plan = plan_batch([incoming(e) for e in events], set(), {})
    task = plan.tasks["t-neg"]
    assert len(plan.links) == len(events)  # in the audit trail as it came
    assert (task.model_calls, task.cost_usd) == (0, Decimal(0))
    assert plan.spend == {}


def test_times_are_chained_in_utc() -> None:
    local = timezone(timedelta(hours=2))
    ev = Event(event_id="e1", type="robot.danced", task_id="t-f", at=AT.astimezone(local))
    assert incoming(ev).event.at.tzinfo is UTC
    assert (
        incoming(ev).body
        == incoming(Event(event_id="e1", type="robot.danced", task_id="t-f", at=AT)).body
    )


def test_a_result_is_chained_as_a_task_result_event() -> None:
    result = TaskCompleted(task_id="t-g", system="research", output="done", finished_at=AT)
    item = decode_result(encode(result), "results", 0, 7)
    assert (item.event.type, item.event.task_id, item.offset) == (RESULT_EVENT, "t-g", 7)
    assert plan_batch([item], set(), {}).tasks["t-g"].status == "succeeded"


def test_a_prepared_plan_is_used_only_on_the_heads_it_assumed() -> None:
    events = [incoming(e) for e in task_events("t-h", start=AT)]
    prepared = prepare(events[2:], {"t-h": (2, "x" * 64)})
    assert len(prepared.rows) == len(events) - 2 and prepared.rows[0][2] == 3
    assert event_rows(prepared.plan) == prepared.rows
    assert _agrees(prepared.plan, set(), {"t-h": (2, "x" * 64)})
    assert not _agrees(prepared.plan, set(), {"t-h": (3, "y" * 64)})  # the chain moved
    assert not _agrees(prepared.plan, {events[2].event.event_id}, {"t-h": (2, "x" * 64)})
    assert _agrees(prepare(events, {}).plan, set(), {})  # a new task starts at genesis


def _links(task_id: str) -> list[StoredLink]:
    plan = plan_batch([incoming(e) for e in task_events(task_id, start=AT)], set(), {})
    return [
        StoredLink(
            event_id=link.item.event.event_id,
            task_id=task_id,
            seq=link.seq,
            type=link.item.event.type,
            at=link.item.event.at,
            data=link.item.event.data,
            body=link.item.body.decode(),
            prev_hash=link.prev_hash,
            hash=link.hash,
        )
        for link in plan.links
    ]


def test_an_intact_chain_verifies() -> None:
    links = _links("t-i")
    assert verify_chain("t-i", links, (links[-1].seq, links[-1].hash)) is None


def test_verify_names_the_first_broken_link() -> None:
    links = _links("t-j")
    head = (links[-1].seq, links[-1].hash)
    tampered = [*links[:3], _replace_body(links[3], '"tampered"'), *links[4:]]
    found = verify_chain("t-j", tampered, head)
    assert isinstance(found, Break) and found.seq == 4 and "hash does not match" in found.problem
    missing = verify_chain("t-j", [*links[:2], *links[3:]], head)
    assert missing is not None and missing.problem == "link 3 is missing"
    cut = verify_chain("t-j", links[:-2], head)
    assert cut is not None and "links were removed" in cut.problem


def _replace_body(link: StoredLink, output: str) -> StoredLink:
    body = link.body.replace('"hello"', output).replace('"planner done"', output)
    return StoredLink(**{**{f: getattr(link, f) for f in link.__slots__}, "body": body + " "})
