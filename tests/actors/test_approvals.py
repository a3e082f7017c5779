"""A tool call that needs a person's approval parks the step in Kafka; the decision resumes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_service.approvals import decide_approval, list_approvals
from tests.actors import sample_tools
from tests.actors.conftest import Runtime
from tests.helpers import wait_until
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration

GRAPHS = [Path(__file__).with_name("graphs.yaml")]


async def pending(rt: Runtime, task_id: str) -> list[str]:
    entries = await list_approvals(rt.kafka, rt.names)
    return [e.request.approval_id for e in entries if e.request.task_id == task_id]


@pytest.mark.parametrize("granted", [True, False])
async def test_approval_parks_and_resumes_the_step(runtime: Runtime, granted: bool) -> None:
    await runtime.start(GRAPHS, actors=["cautious"])
    sample_tools.CALLS.clear()
    task_id = await runtime.submit("solo-cautious", "Look up the payroll.")
    ids = await wait_until(lambda: pending(runtime, task_id), timeout=60)
    await wait_until(lambda: runtime.collector.of_type(task_id, "approval.requested"))
    assert not runtime.collector.results.get(task_id)
    assert sample_tools.CALLS == []
    await decide_approval(
        runtime.kafka, runtime.names, ids[0], granted=granted, decided_by="alice", reason="ok"
    )
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted)
    assert result.output == "done after the approval"
    await wait_until(lambda: runtime.collector.of_type(task_id, "tool.called"))
    call = runtime.collector.of_type(task_id, "tool.called")[0]
    if granted:
        assert call.data["status"] == "ok" and sample_tools.CALLS == ["salaries"]
    else:
        assert call.data["status"] == "denied" and sample_tools.CALLS == []
