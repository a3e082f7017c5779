"""A tool call that needs a person's approval parks the step in Kafka; the decision resumes it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from podium.cli import app
from policy_service.approvals import ApprovalSignerUntrusted, decide_approval, list_approvals
from policy_service.settings import PolicySettings
from tests.actors import sample_tools
from tests.actors.conftest import SIGNING_KEY, VERIFY_KEYS, Runtime
from tests.helpers import APPROVER_KEY, APPROVER_PUBLIC, approver_for, key_pair, wait_until
from topics.messages import ApprovalRequestedData, TaskCompleted, payload_of

pytestmark = pytest.mark.integration

GRAPHS = [Path(__file__).with_name("graphs.yaml")]
APPROVER = approver_for(VERIFY_KEYS)


async def pending(rt: Runtime, task_id: str) -> list[str]:
    entries = await list_approvals(rt.kafka, rt.names, APPROVER.trusted)
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
        runtime.kafka,
        runtime.names,
        ids[0],
        signer=APPROVER.signer,
        trusted=APPROVER.trusted,
        granted=granted,
        decided_by="alice",
        reason="ok",
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
            signing_key=SIGNING_KEY,
            verify_keys=VERIFY_KEYS,
            approver_keys=APPROVER_PUBLIC,
            approval_ttl_s=ttl.total_seconds(),
        ),
    )
    task_id = await runtime.submit("solo-cautious", "Look up the payroll.")
    await wait_until(lambda: pending(runtime, task_id), timeout=60)
    entries = [
        e
        for e in await list_approvals(runtime.kafka, runtime.names, APPROVER.trusted)
        if e.request.task_id == task_id
    ]
    request = entries[0].request
    # The policy stamped the expiry when it decided, just before the actor parked the step.
    assert request.requested_at + ttl - timedelta(seconds=60) < request.expires_at
    assert request.expires_at <= request.requested_at + ttl
    asked = await wait_until(lambda: runtime.collector.of_type(task_id, "approval.requested"))
    assert payload_of(asked[0], ApprovalRequestedData).expires_at == request.expires_at
    assert request.request.deadline == request.expires_at


async def test_an_operator_approves_from_the_command_line(runtime: Runtime) -> None:
    """`podium approvals` lists the parked step and `podium approve ID` resumes it, signed with
    the operator's approver key; a key the policy service does not trust is refused before
    anything is written (the forged decision itself is tests/policy/test_attacks.py's)."""
    await runtime.start(GRAPHS, actors=["cautious"])
    sample_tools.clear_calls()
    task_id = await runtime.submit("solo-cautious", "Look up the payroll.")
    [approval_id] = await wait_until(lambda: pending(runtime, task_id), timeout=60)
    env = {
        **runtime.kafka.as_env(),
        "PODIUM_POLICY_VERIFY_KEYS": VERIFY_KEYS,
        "PODIUM_POLICY_APPROVER_KEYS": APPROVER_PUBLIC,
        "PODIUM_APPROVER_SIGNING_KEY": APPROVER_KEY,
    }
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, app, ["approvals", "-o", "json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert approval_id in [a["id"] for a in json.loads(listed.stdout)]

    stranger = {**env, "PODIUM_APPROVER_SIGNING_KEY": key_pair("stranger")[0]}
    refused = await asyncio.to_thread(runner.invoke, app, ["approve", approval_id], env=stranger)
    assert isinstance(refused.exception, ApprovalSignerUntrusted)  # `podium` prints it, exit 2
    assert "'stranger' is not trusted" in str(refused.exception)
    still = await asyncio.to_thread(runner.invoke, app, ["approvals", "-o", "json"], env=env)
    assert approval_id in [a["id"] for a in json.loads(still.stdout)], "still pending"

    approved = await asyncio.to_thread(
        runner.invoke, app, ["approve", approval_id, "--reason", "payroll run"], env=env
    )
    assert approved.exit_code == 0, approved.output
    assert "granted" in approved.stdout and "test-approver" in approved.stdout
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted)
    [call] = await wait_until(lambda: runtime.collector.of_type(task_id, "tool.called"))
    assert call.data["status"] == "ok", call.data
    assert sample_tools.calls() == ["salaries"]
