"""Orloj-format governance on the real stack: a ToolPermission's `required_permissions` deny a
tool call, another's `operation_rules` park the next one for a person's approval."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_service.approvals import decide_approval, list_approvals
from tests.actors import sample_tools
from tests.actors.conftest import VERIFY_KEYS, Runtime
from tests.helpers import approver_for, wait_until
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration

MANIFESTS = [Path(__file__).with_name("orloj_governance.yaml")]
APPROVER = approver_for(VERIFY_KEYS)


async def pending(rt: Runtime, task_id: str) -> list[str]:
    entries = await list_approvals(rt.kafka, rt.names, APPROVER.trusted)
    return [e.request.approval_id for e in entries if e.request.task_id == task_id]


async def test_orloj_tool_permissions_deny_one_call_and_park_the_next(runtime: Runtime) -> None:
    await runtime.start(MANIFESTS, actors=["bookkeeper"])
    sample_tools.clear_calls()
    task_id = await runtime.submit("governed-books", "Close the books.")
    ids = await wait_until(lambda: pending(runtime, task_id), timeout=60)

    # The purge was denied by its ToolPermission (the role lacks tool:ledger_purge:invoke) and
    # never ran; the write waits for a person, as its operation rule says.
    called = await wait_until(lambda: runtime.collector.of_type(task_id, "tool.called"))
    purge = called[0].data
    assert (purge["tool"], purge["status"]) == ("ledger-purge", "denied"), purge
    decided = runtime.collector.of_type(task_id, "policy.decided")
    verdicts = {(e.data["decision"], e.data["rule"], e.data["policy"]) for e in decided}
    assert ("deny", "tool_permission", "ToolPermission/ledger-purge-invoke") in verdicts
    assert (
        "approval_required",
        "operation_rules",
        "ToolPermission/ledger-write-approval",
    ) in verdicts
    assert sample_tools.calls() == []

    await decide_approval(
        runtime.kafka,
        runtime.names,
        ids[0],
        signer=APPROVER.signer,
        trusted=APPROVER.trusted,
        granted=True,
        decided_by="alice",
        reason="month end",
    )
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted) and result.output == "books closed"
    assert sample_tools.calls() == ["write"]
