"""`podium delete`: who refers to what (no Kafka), then deletions through the command line on
the real broker, seen by a running watcher."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ledger.submit import SystemUnknown
from manifests._topic import read_records
from manifests.apply import apply_paths
from manifests.delete import parse_target, referrers
from manifests.loader import parse_files
from manifests.watcher import CatalogWatcher
from podium.cli import app
from podium.composition.ledger_api import KafkaSubmitter
from podium.core.settings import KafkaSettings
from tests.conftest import OFFLINE_ENDPOINT
from tests.helpers import scaled, wait_until
from topics.messages import TaskRequested, utcnow
from topics.names import TopicNames

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
PIPELINE = EXAMPLES / "research-pipeline"
OFFLINE = [
    PIPELINE / "agents.yaml",
    PIPELINE / "system.yaml",
    PIPELINE / "governance.yaml",
    OFFLINE_ENDPOINT,
]
REPORT = EXAMPLES / "report-system"


def test_referrers_of_an_agent_an_endpoint_a_system_and_a_task() -> None:
    located, errors = parse_files(OFFLINE)
    assert errors == []
    assert referrers(located, {"Agent/writer"}) == {
        "AgentSystem/research-pipeline": ["agent 'writer' is not defined"],
        "ToolPermission/web-search-permission": ["agent 'writer' is not defined"],
    }
    by_endpoint = referrers(located, {"ModelEndpoint/openai"})
    assert set(by_endpoint) == {"Agent/researcher", "Agent/analyst", "Agent/writer"}
    assert referrers(located, {"AgentSystem/research-pipeline"}) == {
        "AgentPolicy/research-pipeline-policy": ["AgentSystem 'research-pipeline' is not defined"]
    }
    # The referrer deleted with what it refers to: nothing is left that needs them.
    assert referrers(located, {k.resource.key for k in located}) == {}
    assert referrers(located, {"AgentPolicy/research-pipeline-policy"}) == {}

    report, errors = parse_files([REPORT])
    assert errors == []
    assert referrers(report, {"Task/weekly-report-template"}) == {
        "TaskSchedule/weekly-report": ["Task 'weekly-report-template' is not defined"]
    }


def test_targets_are_kind_slash_name() -> None:
    assert parse_target("agent/writer") == "Agent/writer"
    assert parse_target("AgentSystem/research-pipeline") == "AgentSystem/research-pipeline"
    assert parse_target("Gadget/x") == "Gadget/x"  # unknown kinds are refused when deleting
    assert parse_target("writer") is None
    assert parse_target("Agent/") is None
    assert parse_target("Agent/a/b") is None


@pytest.mark.integration
async def test_cli_delete_refuses_referred_then_deletes_and_watchers_see_it(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    assert (await apply_paths(kafka_settings, topic_names, OFFLINE)).ok
    assert (await apply_paths(kafka_settings, topic_names, [REPORT])).ok
    env = kafka_settings.as_env()
    runner = CliRunner()
    watcher = CatalogWatcher(kafka_settings, topic_names)
    await watcher.start()
    try:
        before = await read_records(kafka_settings, topic_names.manifests)
        # A system still names the agent: refused, with the referrers, nothing deleted.
        refused = await _invoke(runner, ["delete", "Agent/writer"], env)
        assert refused.exit_code == 1, refused.output
        assert "AgentSystem/research-pipeline still refers to it" in refused.stderr
        assert "ToolPermission/web-search-permission still refers to it" in refused.stderr
        assert "nothing was deleted" in refused.stderr
        schedule = await _invoke(runner, ["delete", "task/weekly-report-template"], env)
        assert schedule.exit_code == 1 and "TaskSchedule/weekly-report" in schedule.stderr
        for args, message in (
            (["delete", "Agent/nobody"], "Agent/nobody is not applied"),
            (["delete", "Gadget/x"], "unknown kind 'Gadget'"),
            (["delete", "RoutingTable/research-pipeline"], "go with their AgentSystem"),
        ):
            result = await _invoke(runner, args, env)
            assert result.exit_code == 1 and message in result.stderr, result.output
        usage = await _invoke(runner, ["delete", "writer"], env)
        assert usage.exit_code == 2 and "KIND/NAME" in usage.output
        nothing = await _invoke(runner, ["delete"], env)
        assert nothing.exit_code == 2
        after = await read_records(kafka_settings, topic_names.manifests)
        assert {k: r.digest for k, r in after.items()} == {k: r.digest for k, r in before.items()}

        # Deleting the referrer too, in one call, is fine; its routing table goes with it.
        ok = await _invoke(
            runner,
            [
                "delete",
                "AgentSystem/research-pipeline",
                "AgentPolicy/research-pipeline-policy",
                "ToolPermission/web-search-permission",
                "Agent/writer",
            ],
            env,
        )
        assert ok.exit_code == 0, ok.output
        assert "Agent/writer deleted" in ok.stdout
        assert "RoutingTable/research-pipeline deleted" in ok.stdout
        catalog = await watcher.wait_for(
            lambda c: "research-pipeline" not in c.systems, timeout=scaled(30)
        )
        assert "writer" not in catalog.agents and "research-pipeline" not in catalog.routing
        assert {"researcher", "analyst"} <= set(catalog.agents)
        assert "report-system" in catalog.systems

        # Every resource of a folder: its endpoint (the same name as the pipeline's) is still
        # what the pipeline's agents call.
        folder = await _invoke(runner, ["delete", "-f", str(REPORT)], env)
        assert folder.exit_code == 1
        assert "Agent/analyst still refers to it: ModelEndpoint 'openai'" in folder.stderr
        files = [
            a for f in ("system", "schedule", "mcp", "policy") for a in ("-f", f"{REPORT / f}.yaml")
        ]
        by_file = await _invoke(runner, ["delete", *files], env)
        assert by_file.exit_code == 0, by_file.output
        assert "TaskSchedule/weekly-report deleted" in by_file.stdout
        catalog = await watcher.wait_for(
            lambda c: "report-system" not in c.systems and not c.schedules, timeout=scaled(30)
        )
        assert not catalog.tasks and not catalog.mcp_servers
    finally:
        await watcher.stop()

    remaining = await read_records(kafka_settings, topic_names.manifests)
    assert sorted(remaining) == [
        "Agent/analyst",
        "Agent/researcher",
        "AgentRole/research-role",
        "ModelEndpoint/openai",
    ]
    # What is gone can be applied again.
    assert (await apply_paths(kafka_settings, topic_names, OFFLINE)).ok


async def _invoke(runner: CliRunner, args: list[str], env: dict[str, str]) -> Result:
    """The command runs its own event loop: run it off this test's loop."""
    return await asyncio.to_thread(runner.invoke, app, args, env=env)


@pytest.mark.integration
async def test_a_running_service_stops_taking_tasks_for_a_deleted_system(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    """The ledger API's submitter follows the catalog: a deleted system is unknown to it."""
    assert (await apply_paths(kafka_settings, topic_names, OFFLINE)).ok
    submitter = KafkaSubmitter(kafka_settings, topic_names)

    def task() -> TaskRequested:
        return TaskRequested(
            task_id=f"task-{uuid.uuid4().hex[:10]}",
            system="research-pipeline",
            input="hello",
            submitted_at=utcnow(),
        )

    async def refused() -> bool:
        try:
            await submitter.submit(task())
        except SystemUnknown:
            return True
        return False

    try:
        await submitter.submit(task())
        args = ["delete", "AgentSystem/research-pipeline", "AgentPolicy/research-pipeline-policy"]
        result = await _invoke(CliRunner(), args, kafka_settings.as_env())
        assert result.exit_code == 0, result.output
        await wait_until(refused, timeout=30, interval=0.2)
    finally:
        await submitter.aclose()
