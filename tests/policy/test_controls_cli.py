"""`podium pause|resume|throttle` and `podium controls`, as an operator types them, against a
running policy service."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from typer.testing import CliRunner, Result

from podium.cli import app
from tests.helpers import wait_until
from tests.policy.conftest import PolicyHarness
from tests.policy.test_service import model_call, tool_call

pytestmark = pytest.mark.integration


async def podium(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_an_operator_pauses_throttles_lists_and_resumes(harness: PolicyHarness) -> None:
    await harness.start_service()
    authorizer = await harness.authorizer()
    env = harness.kafka.as_env()

    paused = await podium(env, "pause", "agent/researcher", "--reason", "runaway", "--by", "ana")
    assert paused.exit_code == 0, paused.output
    assert "agent/researcher paused by ana at " in paused.output

    async def denied() -> object:
        decision = await model_call(authorizer, f"task-{uuid.uuid4().hex[:10]}")
        return decision if decision.rule == "control" else None

    decision = await wait_until(denied, timeout=20)
    assert "agent 'researcher' is paused by ana" in decision.reason and "runaway" in decision.reason

    throttled = await podium(env, "throttle", "tool/web-search", "--per-minute", "2", "--by", "ben")
    assert throttled.exit_code == 0, throttled.output
    assert "tool/web-search throttled to 2 calls per minute by ben" in throttled.output
    listed = await podium(env, "controls", "-o", "json")
    assert listed.exit_code == 0, listed.output
    rows = {row["target"]: row for row in json.loads(listed.output)}
    assert rows.keys() == {"agent/researcher", "tool/web-search"}
    assert (rows["agent/researcher"]["state"], rows["agent/researcher"]["set_by"]) == (
        "paused",
        "ana",
    )
    assert (rows["tool/web-search"]["state"], rows["tool/web-search"]["per_minute"]) == (
        "throttled",
        2,
    )
    table = await podium(env, "controls")
    assert "agent/researcher" in table.output and "runaway" in table.output

    resumed = await podium(env, "resume", "agent/researcher", "--by", "ana")
    assert resumed.exit_code == 0, resumed.output

    async def allowed() -> bool:
        task = f"task-{uuid.uuid4().hex[:10]}"
        return (await model_call(authorizer, task)).decision == "allow"

    await wait_until(allowed, timeout=20)
    task = f"task-{uuid.uuid4().hex[:10]}"
    decided = [await tool_call(authorizer, task, "web-search") for _ in range(3)]
    assert [d.decision for d in decided] == ["allow", "allow", "deny"]

    await podium(env, "resume", "tool/web-search")
    empty = await podium(env, "controls")
    assert "no target is paused or throttled" in empty.output


async def test_a_target_that_is_not_one_is_refused_with_the_fix(harness: PolicyHarness) -> None:
    env = harness.kafka.as_env()
    for args in (["pause", "writer"], ["throttle", "model/gpt", "--per-minute", "5"]):
        result = await podium(env, *args)
        assert result.exit_code == 2
        text = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())  # rich's box
        assert "write agent/NAME, system/NAME or tool/NAME" in text
    zero = await podium(env, "throttle", "tool/x", "--per-minute", "0")
    assert zero.exit_code == 2
