"""A tool call that needs a person's approval parks the step in Kafka; the decision resumes it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from policy_service.approvals import decide_approval, list_approvals
from policy_service.settings import PolicySettings
from tests.actors import sample_tools
from tests.actors.conftest import SIGNING_KEY, VERIFY_KEYS, Runtime
from tests.helpers import wait_until
from topics.messages import ApprovalRequestedData, TaskCompleted, payload_of

pytestmark = pytest.mark.integration

GRAPHS = [Path(__file__).with_name("graphs.yaml")]


async def pending(rt: Runtime, task_id: str) -> list[str]:
    entries = await list_approvals(rt.kafka, rt.names)
    return [e.request.approval_id for e in entries if e.request.task_id == task_id]


@pytest.mark.parametrize("granted", [True, False])
async def test_approval_parks_and_resumes_the_step(runtime: Runtime, granted: bool) -> None:
    await runtime.start(GRAPHS, actors=["cautious"])
    sample_tools.clear_calls()
    task_id = await runtime.submit("solo-cautious", "Look up the payroll.")
    ids = await wait_until(lambda: pending(runtime, task_id), timeout=60)
    await wait_until(lambda: runtime.collector.of_type(task_id, "approval.requested"))
    assert not runtime.collector.results.get(task_id)
    assert sample_tools.calls() == []
    await decide_approval(
        runtime.kafka, runtime.names, ids[0], granted=granted, decided_by="alice", reason="ok"
    )
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted)
    assert result.output == "done after the approval"
    await wait_until(lambda: runtime.collector.of_type(task_id, "tool.called"))
    call = runtime.collector.of_type(task_id, "tool.called")[0]
    if granted:
        assert call.data["status"] == "ok" and sample_tools.calls() == ["salaries"]
    else:
        assert call.data["status"] == "denied" and sample_tools.calls() == []


async def test_approval_expiry_is_the_policy_services_ttl(runtime: Runtime) -> None:
    ttl = timedelta(seconds=7777)
    await runtime.start(
        GRAPHS,
        actors=["cautious"],
        policy_settings=PolicySettings(
            signing_key=SIGNING_KEY, verify_keys=VERIFY_KEYS, approval_ttl_s=ttl.total_seconds()
        ),
    )
    task_id = await runtime.submit("solo-cautious", "Look up the payroll.")
    await wait_until(lambda: pending(runtime, task_id), timeout=60)
    entries = [
        e
        for e in await list_approvals(runtime.kafka, runtime.names)
        if e.request.task_id == task_id
    ]
    request = entries[0].request
    # The policy stamped the expiry when it decided, just before the actor parked the step.
    assert request.requested_at + ttl - timedelta(seconds=60) < request.expires_at
    assert request.expires_at <= request.requested_at + ttl
    asked = await wait_until(lambda: runtime.collector.of_type(task_id, "approval.requested"))
    assert payload_of(asked[0], ApprovalRequestedData).expires_at == request.expires_at
    assert request.request.deadline == request.expires_at
