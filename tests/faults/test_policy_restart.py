"""The policy service killed (`kill -9`) mid-run and restarted.

The research pipeline (offline: mock model, the built-in web-search tool) runs as separate
processes: `podium dispatcher`, `podium policy` and one `podium actor` per role. Once some tasks
are done the policy process is killed and, after an outage, a new one is started; then a second
batch of tasks is submitted. Then:

- no `model.called` or `tool.called` event exists without an `allow` `policy.decided` for the same
  request id before it in the task's events (fail closed while the service is away);
- every task has exactly one result: `succeeded`, or `failed` with a reason that names the
  policy (a decision that did not come within its deadline is a deny);
- every task of the second batch succeeds (the restarted service decides).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from manifests.apply import apply_paths
from tests.actors.conftest import RESEARCH_FILES, Collector
from tests.faults.cluster import Cluster, submit, unique_ids
from tests.helpers import wait_until
from topics.kafka import ensure_topics
from topics.messages import Event, TaskCompleted, TaskFailed
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(240)]

ROLES = ["researcher", "analyst", "writer"]
FIRST, SECOND = 80, 20
OUTAGE_S = 3.0


def unauthorized_calls(events: list[Event]) -> list[str]:
    """Calls (model or tool) with no `allow` decision for their request id before them."""
    allowed: set[str] = set()
    bad = []
    for ev in events:
        if ev.type == "policy.decided" and ev.data.get("decision") == "allow":
            allowed.add(str(ev.data.get("request_id")))
        elif ev.type in ("model.called", "tool.called"):
            if ev.type == "tool.called" and ev.data.get("status") == "denied":
                continue  # the record of a refused call, not an execution
            request_id = str(ev.data.get("request_id"))
            if request_id not in allowed:
                later = [
                    str(e.data.get("decision"))
                    for e in events
                    if e.type == "policy.decided" and e.data.get("request_id") == request_id
                ]
                when = f"decision only AFTER the call: {later}" if later else "no decision at all"
                bad.append(f"{ev.type} {ev.event_id} (request {request_id}): {when}")
    return bad


async def test_policy_killed_and_restarted_nothing_runs_unauthorized(cluster: Cluster) -> None:
    kafka = cluster.kafka
    names = TopicNames(kafka.topic_prefix)
    # a decision may take as long as the outage and the group's rebalance; the task longer.
    # Below the agents' step timeout (30 s for the analyst and the writer), so that a step whose
    # decision did not come fails on the policy's deadline (named), not on its own.
    cluster.env_extra["PODIUM_ACTOR_POLICY_TIMEOUT_S"] = "20"
    await ensure_topics(kafka, [*names.core_topics(), *(names.agent(r) for r in ROLES)])
    report = await apply_paths(kafka, names, [Path(p) for p in RESEARCH_FILES])
    assert not report.errors, report.errors

    collector = Collector()
    stop = asyncio.Event()
    collecting = asyncio.create_task(collector.run(kafka, names, stop))
    try:
        cluster.start("policy", "policy")
        cluster.start("dispatcher", "dispatcher")
        for role in ROLES:
            cluster.start(role, "actor", role)
        await cluster.wait_ready()
        first = unique_ids("pol", FIRST)
        await submit(kafka, names, "research-pipeline", first, timeout_s=180)
        await wait_until(lambda: len(collector.results) >= 10, timeout=120, interval=0.1)
        at_kill = len(collector.results)
        assert at_kill < FIRST, "too late to kill the policy service mid-run"
        cluster.kill("policy")
        await asyncio.sleep(OUTAGE_S)  # the outage itself: nobody answers for this long
        cluster.start("policy", "policy")
        await cluster.wait_ready("policy")
        second = unique_ids("pol2", SECOND)
        await submit(kafka, names, "research-pipeline", second, timeout_s=180)
        everything = first + second
        try:
            await wait_until(
                lambda: all(collector.results.get(t) for t in everything),
                timeout=200,
                interval=0.2,
            )
        except AssertionError:
            missing = [t for t in everything if not collector.results.get(t)]
            raise AssertionError(f"no result for {len(missing)} tasks: {missing[:10]}") from None
        await wait_until(
            lambda: all(
                collector.of_type(t, "task.completed") or collector.of_type(t, "task.failed")
                for t in everything
            ),
            timeout=30,
        )

        succeeded = failed = calls = decisions = 0
        for task_id in everything:
            results = collector.results[task_id]
            assert len(results) == 1, results
            result = results[0]
            if isinstance(result, TaskFailed):
                failed += 1
                assert "policy" in result.error or "fail_closed" in result.error, result.error
                assert task_id in first, f"{task_id} was submitted after the restart: {result}"
            else:
                assert isinstance(result, TaskCompleted)
                succeeded += 1
            events = collector.events[task_id]
            bad = unauthorized_calls(events)
            assert not bad, f"{task_id}: calls without an allow decision: {bad}"
            calls += sum(e.type in ("model.called", "tool.called") for e in events)
            decisions += sum(e.type == "policy.decided" for e in events)
        assert calls > 0 and succeeded >= SECOND
        print(
            f"\nfaults/policy-restart: tasks={len(everything)} kills={cluster.kills} "
            f"killed_after={at_kill}_results outage_s={OUTAGE_S} succeeded={succeeded} "
            f"failed_with_reason={failed} calls_checked={calls} decisions={decisions}"
        )
    finally:
        stop.set()
        await collecting
