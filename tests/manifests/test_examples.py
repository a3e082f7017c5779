"""The examples and every manifest of the seeds are accepted as written; `podium compile` on each
example matches its golden file (regenerate with PODIUM_UPDATE_GOLDEN=1 after a deliberate change).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manifests.loader import load_paths
from manifests.models import Agent, AgentPolicy, McpServer
from podium.cli import app
from tests.conftest import OFFLINE_ENDPOINT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


def test_all_examples_present() -> None:
    assert NAMES == [
        "drafter-critic-loop",
        "fan-out-join",
        "report-system",
        "research-pipeline",
        "supervisor",
        "telegram-bot",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_example_is_valid(name: str) -> None:
    result = load_paths([EXAMPLES / name])
    assert [str(e) for e in result.errors] == []


@pytest.mark.parametrize("name", NAMES)
def test_compile_matches_golden(name: str) -> None:
    result = CliRunner().invoke(
        app, ["compile", "-f", str(EXAMPLES / name), "-o", "json", "--prefix", "podium"]
    )
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("PODIUM_UPDATE_GOLDEN") == "1":
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()


def test_compile_is_deterministic() -> None:
    runs = {
        CliRunner().invoke(app, ["compile", "-f", str(EXAMPLES / n), "-o", "yaml"]).stdout
        for n in NAMES
        for _ in range(2)
    }
    assert len(runs) == len(NAMES)


def test_offline_research_pipeline_uses_the_mock_under_the_same_name() -> None:
    folder = EXAMPLES / "research-pipeline"
    files = [folder / f for f in ("agents.yaml", "system.yaml", "governance.yaml")]
    result = load_paths([*files, OFFLINE_ENDPOINT])
    assert result.catalog is not None, result.errors
    endpoint, model = result.catalog.model_for("writer")
    assert (endpoint.name, endpoint.spec.provider, model) == ("openai", "mock", "gpt-4o-mini")
    assert endpoint.spec.pricing is not None
    assert endpoint.spec.pricing.output_per_million == 10.0
    assert "researcher" in endpoint.spec.options["script"]
    real = load_paths([folder])
    assert real.catalog is not None
    assert real.catalog.endpoints["openai"].spec.provider == "openai"


def test_tutorial_files_are_the_tutorial_verbatim() -> None:
    """A few tell-tale lines of the tutorial's four files, in the tutorial's layout."""
    folder = EXAMPLES / "research-pipeline"
    assert "  tools:\n    - none\n" in (folder / "agents.yaml").read_text()
    assert "    researcher:\n      next: analyst\n" in (folder / "system.yaml").read_text()
    assert "    max_cost_per_task_usd: 0.50\n" in (folder / "governance.yaml").read_text()
    assert (folder / "endpoint.yaml").read_text().endswith("  api_key_env: OPENAI_API_KEY\n")


SEED_GRAPHS = {
    "supervisor": """
graph:
  supervisor:
    delegates_to:
      - worker-a
      - worker-b
      - worker-c
""",
    "fan-out": """
graph:
  researcher:
    fan_out:
      - analyst-finance
      - analyst-legal
      - analyst-tech
    join: report-writer
""",
    "loop": """
graph:
  drafter:
    next: critic
  critic:
    next: drafter
    exit_when: approved
    max_iterations: 3
""",
}


@pytest.mark.parametrize("snippet", sorted(SEED_GRAPHS))
def test_tutorial_graph_snippets_appear_in_examples(snippet: str) -> None:
    graph = SEED_GRAPHS[snippet].strip().splitlines()[1:]
    texts = "\n".join(p.read_text() for p in EXAMPLES.glob("*/system.yaml"))
    indented = "\n".join("  " + line for line in graph)
    assert indented in texts


def test_seed_002_snippets_as_written() -> None:
    writer = (EXAMPLES / "telegram-bot" / "agents.yaml").read_text()
    assert (
        "  name: telegram-bot-writer-agent\nspec:\n  model_ref: anthropic-default\n  prompt: |\n"
        "    You are the writer and delivery stage of a Telegram content bot\n  tools:\n"
        "    - telegram-send-message\n  limits:\n    max_steps: 4\n    timeout: 30s\n"
    ) in writer
    catalog = load_paths([EXAMPLES / "report-system"]).catalog
    assert catalog is not None
    policy = catalog.policies["cost-policy"]
    assert isinstance(policy, AgentPolicy)
    assert policy.applies_to("report-system", "report-writer")
    assert not policy.applies_to("research-pipeline", "writer")
    assert policy.max_tokens_per_task == 50000
    assert policy.allowed_models == ["gpt-4o"]
    assert policy.denied_tools == ["filesystem_delete"]
    gmail = catalog.mcp_servers["gmail"]
    assert isinstance(gmail, McpServer)
    assert gmail.spec.idle_timeout_s == 300.0
    assert [e.secret_ref for e in gmail.spec.env] == [
        "gmail-creds/oauth_keys",
        "gmail-creds/credentials",
    ]
    bot = load_paths([EXAMPLES / "telegram-bot"]).catalog
    assert bot is not None
    agent = bot.agents["telegram-bot-writer-agent"]
    assert isinstance(agent, Agent)
    assert agent.spec.tools == ["telegram-send-message"]
    assert bot.model_for(agent.name)[1] == "claude-sonnet-4-5"
    table = bot.routing["telegram-bot-system"]
    assert table.entry == ["telegram-bot-parser-agent"]
    assert [e.to for e in table.nodes["telegram-bot-research-agent"].edges] == [
        "telegram-bot-writer-agent"
    ]


def test_golden_files_are_json() -> None:
    for name in NAMES:
        value = json.loads((GOLDEN / f"{name}.json").read_text())
        assert set(value) == {"systems", "topics"}
