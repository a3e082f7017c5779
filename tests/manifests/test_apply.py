"""`apply`, `get` and the watcher on the real broker."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manifests._topic import read_records
from manifests.apply import apply_paths
from manifests.watcher import CatalogWatcher
from podium.cli import app
from podium.core.settings import KafkaSettings
from tests.conftest import OFFLINE_ENDPOINT
from topics.names import TopicNames

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
PIPELINE = EXAMPLES / "research-pipeline"
OFFLINE = [
    PIPELINE / "agents.yaml",
    PIPELINE / "system.yaml",
    PIPELINE / "governance.yaml",
    OFFLINE_ENDPOINT,
]


def _env(kafka: KafkaSettings) -> dict[str, str]:
    """The command line as the test's principal, on the test's prefix."""
    return kafka.as_env()


async def test_apply_twice_then_change(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    first = await apply_paths(kafka_settings, topic_names, OFFLINE)
    assert first.errors == []
    assert first.changed["AgentSystem/research-pipeline"] == 1
    assert first.changed["RoutingTable/research-pipeline"] == 1
    assert len(first.changed) == 9
    assert topic_names.agent_joins("writer") in first.created_topics
    assert topic_names.manifests in first.created_topics

    second = await apply_paths(kafka_settings, topic_names, OFFLINE)
    assert second.no_change and len(second.unchanged) == 9

    records = await read_records(kafka_settings, topic_names.manifests)
    assert records["Agent/writer"].generation == 1
    assert records["Agent/writer"].source.endswith("agents.yaml:32")


async def test_changed_resource_gets_next_generation(
    kafka_settings: KafkaSettings, topic_names: TopicNames, tmp_path: Path
) -> None:
    files = [tmp_path / path.name for path in OFFLINE]
    for path, target in zip(OFFLINE, files, strict=True):
        shutil.copy(path, target)
    assert (await apply_paths(kafka_settings, topic_names, files)).ok
    agents = tmp_path / "agents.yaml"
    agents.write_text(agents.read_text().replace("max_steps: 8", "max_steps: 6"))
    report = await apply_paths(kafka_settings, topic_names, [agents])  # the rest is on the topic
    assert report.changed == {"Agent/researcher": 2}


async def test_invalid_apply_leaves_topic_untouched(
    kafka_settings: KafkaSettings, topic_names: TopicNames, tmp_path: Path
) -> None:
    assert (await apply_paths(kafka_settings, topic_names, OFFLINE)).ok
    before = await read_records(kafka_settings, topic_names.manifests)
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (PIPELINE / "agents.yaml").read_text().replace("max_steps: 8", "max_steps: 3")
        + "---\napiVersion: orloj.dev/v1\nkind: Agent\nmetadata: {name: x}\n"
        "spec: {model_ref: nowhere}\n"
    )
    report = await apply_paths(kafka_settings, topic_names, [broken])
    assert [str(e) for e in report.errors] == [
        f"{broken}:50: Agent/x: ModelEndpoint 'nowhere' is not defined"
    ]
    after = await read_records(kafka_settings, topic_names.manifests)
    assert {k: r.digest for k, r in after.items()} == {k: r.digest for k, r in before.items()}


def test_cli_apply_get(kafka_settings: KafkaSettings) -> None:
    runner = CliRunner()
    env = _env(kafka_settings)
    args = ["apply"] + [a for f in OFFLINE for a in ("-f", str(f))]
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert "AgentSystem/research-pipeline created" in first.stdout
    again = runner.invoke(app, args, env=env)
    assert again.exit_code == 0 and again.stdout.startswith("no change"), again.output

    systems = runner.invoke(app, ["get", "systems", "-o", "json"], env=env)
    assert systems.exit_code == 0, systems.output
    value = json.loads(systems.stdout)
    assert [(s["name"], s["generation"]) for s in value] == [("research-pipeline", 1)]
    assert value[0]["resource"]["spec"]["graph"]["researcher"] == {"next": "analyst"}

    one = runner.invoke(app, ["get", "agents", "writer", "-o", "json"], env=env)
    assert json.loads(one.stdout)["resource"]["spec"]["model"]["model"] == "gpt-4o-mini"
    missing = runner.invoke(app, ["get", "agents", "nobody"], env=env)
    assert missing.exit_code == 1

    bad = runner.invoke(app, ["apply", "-f", str(EXAMPLES / "nope.yaml")], env=env)
    assert bad.exit_code == 1 and "no such file or folder" in bad.output


async def test_watcher_follows_changes(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    watcher = CatalogWatcher(kafka_settings, topic_names)
    try:
        await watcher.start()
        assert dict(watcher.catalog.systems) == {}
        seen: list[int] = []
        watcher.subscribe(lambda catalog: seen.append(len(catalog.agents)))
        assert (await apply_paths(kafka_settings, topic_names, OFFLINE)).ok
        catalog = await watcher.wait_for(lambda c: "research-pipeline" in c.systems, timeout=30)
        assert catalog.routing["research-pipeline"].entry == ["researcher"]
        assert catalog.routing["research-pipeline"].nodes["writer"].topic == topic_names.agent(
            "writer"
        )
        assert seen == [3]
        assert (await apply_paths(kafka_settings, topic_names, [EXAMPLES / "supervisor"])).ok
        catalog = await watcher.wait_for(lambda c: "supervisor" in c.systems, timeout=30)
        assert {"research-pipeline", "supervisor"} <= set(catalog.systems)
        with pytest.raises(TimeoutError):
            await watcher.wait_for(lambda c: "never" in c.systems, timeout=0.5)
    finally:
        await watcher.stop()

    late = CatalogWatcher(kafka_settings, topic_names)
    try:
        await late.start()
        assert set(late.catalog.systems) == {"research-pipeline", "supervisor"}
    finally:
        await late.stop()
    await asyncio.sleep(0)
