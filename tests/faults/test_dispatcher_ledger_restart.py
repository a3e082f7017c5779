"""The dispatcher and the ledger killed (`kill -9`) mid-run and restarted.

The `fanout` system (lead -> fin, legal, tech -> join report) runs as separate processes, one
per role, with `podium dispatcher`, `podium policy` and `podium ledger`. Tasks are submitted in
batches; after the first batch has started completing, the dispatcher and the ledger are killed
together, and new ones are started while the next batches arrive. Then:

- every task has exactly one result, `succeeded`, and one `task.started` event;
- the dispatcher duplicated nothing: the first role's inbox holds exactly one step per task;
- the ledger lost nothing and duplicated nothing: its event count per task equals the distinct
  event ids Kafka holds for that task, and its task rows say `succeeded`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from manifests.apply import apply_paths
from tests.actors.conftest import Collector
from tests.faults.cluster import (
    Cluster,
    inbox_step_ids,
    submit,
    unique_ids,
    wait_ledger_matches_kafka,
)
from tests.helpers import wait_until
from topics.kafka import ensure_topics
from topics.messages import TaskCompleted
from topics.names import TopicNames

# 9 processes start (a minute of CPU on a busy machine), then 200 tasks, a kill and a restart
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(480)]

GRAPHS = [Path(__file__).parents[1] / "actors" / "graphs.yaml"]
ROLES = ["lead", "fin", "legal", "tech", "report"]
BATCHES, PER_BATCH = 4, 50


async def test_dispatcher_and_ledger_restarted_lose_and_duplicate_nothing(
    cluster: Cluster,
) -> None:
    kafka = cluster.kafka
    names = TopicNames(kafka.topic_prefix)
    await ensure_topics(kafka, [*names.core_topics(), *(names.agent(r) for r in ROLES)])
    report = await apply_paths(kafka, names, GRAPHS)
    assert not report.errors, report.errors

    collector = Collector()
    stop = asyncio.Event()
    collecting = asyncio.create_task(collector.run(kafka, names, stop))
    try:
        cluster.start("policy", "policy")
        cluster.start("ledger", "ledger")
        cluster.start("dispatcher", "dispatcher")
        for role in ROLES:
            cluster.start(role, "actor", role)
        await cluster.wait_ready()
        task_ids = unique_ids("disp", BATCHES * PER_BATCH)
        batches = [task_ids[i * PER_BATCH : (i + 1) * PER_BATCH] for i in range(BATCHES)]
        await submit(kafka, names, "fanout", batches[0], timeout_s=280)
        await wait_until(lambda: len(collector.results) >= 10, timeout=150, interval=0.1)
        at_kill = len(collector.results)
        cluster.kill("dispatcher")
        cluster.kill("ledger")
        await submit(kafka, names, "fanout", batches[1], timeout_s=280)  # nobody dispatches
        cluster.start("dispatcher", "dispatcher")
        cluster.start("ledger", "ledger")
        for batch in batches[2:]:
            await submit(kafka, names, "fanout", batch, timeout_s=280)
        await cluster.wait_ready("dispatcher", "ledger")
        try:
            await wait_until(
                lambda: all(collector.results.get(t) for t in task_ids), timeout=220, interval=0.2
            )
        except AssertionError:
            missing = [t for t in task_ids if not collector.results.get(t)]
            raise AssertionError(f"no result for {len(missing)} tasks: {missing[:10]}") from None

        for task_id in task_ids:
            results = collector.results[task_id]
            assert len(results) == 1 and isinstance(results[0], TaskCompleted), results
            assert len({e.event_id for e in collector.of_type(task_id, "task.started")}) == 1
        ids = await inbox_step_ids(kafka, names.agent("lead"))
        assert len(ids) == len(set(ids)) == len(task_ids), (len(ids), len(set(ids)))

        events = await wait_ledger_matches_kafka(cluster, names, task_ids, within_s=90)

        async def tasks_succeeded() -> bool:
            conn = await asyncpg.connect(cluster.database_url)
            try:
                statuses = await conn.fetch(
                    f'SELECT status, count(*) AS n FROM "{cluster.ledger_schema}".tasks '
                    "WHERE task_id = ANY($1::text[]) GROUP BY status",
                    task_ids,
                )
            finally:
                await conn.close()
            return {r["status"]: r["n"] for r in statuses} == {"succeeded": len(task_ids)}

        await wait_until(tasks_succeeded, timeout=30, interval=0.5)
        print(
            f"\nfaults/dispatcher-ledger-restart: tasks={len(task_ids)} kills={cluster.kills} "
            f"killed_after={at_kill}_results dispatched_steps={len(ids)} "
            f"events_checked={events} (ledger == kafka per task)"
        )
    finally:
        stop.set()
        await collecting
