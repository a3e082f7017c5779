"""Three replicas per role, 200 tasks through fan-out/join, `kill -9` of random actor replicas.

Every role of the `fanout` system (lead -> fin, legal, tech -> join report) runs as 3 separate
`podium actor` processes, with `podium dispatcher`, `podium policy` and `podium ledger` beside
them. While the tasks run, a random actor replica is killed with SIGKILL after every 30
results (5 kills), and a replacement is started. Then:

- every task has exactly one result, and it is `succeeded`;
- no (task, step) transition was produced twice: one `step.completed` per (task, step), and each
  agent inbox holds every (task, step) once (3 per task for the join role, one per branch);
- every join ran once, with the 3 branches' outputs;
- the ledger's event count per task equals the distinct event ids Kafka holds for it.
"""

from __future__ import annotations

import asyncio
import collections
import random
from pathlib import Path

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

# 18 processes start (a minute of CPU on a busy machine), then 200 tasks through 5 roles
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(600)]

GRAPHS = [Path(__file__).parents[1] / "actors" / "graphs.yaml"]
ROLES = ["lead", "fin", "legal", "tech", "report"]
REPLICAS = 3
TASKS = 200
KILL_AT = [30, 60, 90, 120, 150]  # results after which a random replica is killed


def stuck_report(collector: Collector, task_id_list: list[str]) -> str:
    """What the tasks without a result got to: their events' (type, agent), for the failure."""
    missing = [t for t in task_id_list if not collector.results.get(t)]
    lines = [f"{len(task_id_list) - len(missing)}/{len(task_id_list)} results; missing:"]
    for task_id in missing[:10]:
        trail = [(e.type, e.agent) for e in collector.events.get(task_id, [])]
        lines.append(f"{task_id}: {trail}")
    return "\n".join(lines)


async def test_actor_replicas_killed_lose_and_duplicate_nothing(cluster: Cluster) -> None:
    cluster.kafka = cluster.kafka.model_copy(update={"partitions": 6})
    kafka = cluster.kafka
    names = TopicNames(kafka.topic_prefix)
    await ensure_topics(kafka, [*names.core_topics(), *(names.agent(r) for r in ROLES)])
    report = await apply_paths(kafka, names, GRAPHS)
    assert not report.errors, report.errors

    collector = Collector()
    stop = asyncio.Event()
    collecting = asyncio.create_task(collector.run(kafka, names, stop))
    rng = random.Random()
    try:
        cluster.start("policy", "policy")
        cluster.start("ledger", "ledger")
        cluster.start("dispatcher", "dispatcher")
        for role in ROLES:
            for i in range(REPLICAS):
                cluster.start(f"{role}:{i}", "actor", role)
        await cluster.wait_ready()
        task_ids = unique_ids("kill", TASKS)
        await submit(kafka, names, "fanout", task_ids, timeout_s=280)

        generation = collections.Counter[str]()

        async def results_reach(n: int) -> None:
            try:
                await wait_until(lambda: len(collector.results) >= n, timeout=150, interval=0.1)
            except AssertionError:
                raise AssertionError(stuck_report(collector, task_id_list=task_ids)) from None

        for threshold in KILL_AT:
            await results_reach(threshold)
            victim = rng.choice(sorted(n for n in cluster.procs if n.split(":")[0] in ROLES))
            role = victim.split(":")[0]
            cluster.kill(victim)
            generation[role] += 1
            cluster.start(f"{role}:r{generation[role]}", "actor", role)
            print(f"killed {victim} at {len(collector.results)}/{TASKS} results")
        await results_reach(TASKS)
        await wait_until(
            lambda: all(collector.of_type(t, "task.completed") for t in task_ids), timeout=30
        )
        assert cluster.kills == len(KILL_AT)

        # one result per task, succeeded; one completion per (task, step); each join ran once
        completions = 0
        for task_id in task_ids:
            results = collector.results[task_id]
            assert len(results) == 1 and isinstance(results[0], TaskCompleted), results
            done_events = collector.of_type(task_id, "step.completed")
            keys = [(e.task_id, e.step_id) for e in done_events]
            assert len(keys) == len(set(keys)), f"a step of {task_id} completed twice"
            completions += len(keys)
            assert collections.Counter(e.agent for e in done_events) == dict.fromkeys(ROLES, 1)
            joins = [e for e in collector.of_type(task_id, "step.started") if e.agent == "report"]
            assert len({e.event_id for e in joins}) == 1, f"the join of {task_id} ran twice"
            assert len(joins[0].data["upstream"]) == 3

        # the inboxes: every (task, step) once; 3 per task for the join (one per branch)
        steps_checked = 0
        for role in ROLES:
            ids = await inbox_step_ids(kafka, names.agent(role))
            expected = TASKS * (3 if role == "report" else 1)
            assert len(ids) == expected == len(set(ids)), (role, len(ids), len(set(ids)))
            steps_checked += len(ids)

        # the ledger holds exactly what Kafka holds, per task
        events = await wait_ledger_matches_kafka(cluster, names, task_ids, within_s=60)
        print(
            f"\nfaults/actor-kills: tasks={TASKS} replicas={REPLICAS}x{len(ROLES)} "
            f"kills={cluster.kills} step_completions={completions} inbox_steps={steps_checked} "
            f"events_checked={events} (ledger == kafka per task)"
        )
    finally:
        stop.set()
        await collecting
