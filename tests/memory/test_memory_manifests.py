"""The `Memory` kind and `Agent.memory` (Orloj's shapes): Orloj's examples validate, and each
mistake is refused at validation with its file:line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths
from manifests.models import Agent, Memory

ORLOJ = Path(__file__).resolve().parent / "orloj"
DEPS = ORLOJ / "deps.yaml"

BASE = """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: mock}
spec: {provider: mock, default_model: mock-1}
---
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: chat-only}
spec: {provider: anthropic, default_model: claude-x}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: adapter-key}
spec:
  stringData: {value: t0ken}
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "m.yaml"
    file.write_text(BASE + "---\n" + text)
    return [str(e) for e in load_paths([file]).errors]


@pytest.mark.parametrize("agent", ["research_agent.yaml", "research_agent_model_ref.yaml"])
def test_orloj_memory_example_and_its_agents_validate(agent: str) -> None:
    result = load_paths([ORLOJ / "research_memory.yaml", ORLOJ / agent, DEPS])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    memory = result.catalog.memories["research-memory"]
    assert memory.spec.provider == "pgvector"
    assert memory.spec.embedding_endpoint == "text-embedding-3-large"
    research = result.catalog.agents["research-agent"]
    assert research.spec.memory is not None and research.spec.memory.ref == "research-memory"
    # Orloj grants no memory operation without `allow`: no memory tool is offered.
    assert research.spec.granted_tools == ["web_search", "vector_db"]


@pytest.mark.parametrize(
    "agent", ["research_agent_governed.yaml", "research_agent_governed_allow.yaml"]
)
def test_orloj_governed_agents_memory_validates_and_only_their_roles_are_missing(
    agent: str,
) -> None:
    # Their AgentRole files use Orloj fields Podium does not read yet (another piece of work).
    result = load_paths([ORLOJ / "research_memory.yaml", ORLOJ / agent, DEPS])
    found = [str(e) for e in result.errors]
    assert found and all("AgentRole '" in p and "is not defined" in p for p in found), found


def test_the_memory_example_alone_names_its_missing_embedding_endpoint() -> None:
    [problem] = [str(e) for e in load_paths([ORLOJ / "research_memory.yaml"]).errors]
    assert problem.endswith(
        "research_memory.yaml:8: Memory/research-memory: ModelEndpoint 'text-embedding-3-large' "
        "is not defined"
    ), problem


def test_allow_grants_orloj_operations_in_either_spelling(tmp_path: Path) -> None:
    file = tmp_path / "m.yaml"
    file.write_text(
        BASE
        + """---
apiVersion: orloj.dev/v1
kind: Memory
metadata: {name: notes}
spec: {}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: a}
spec:
  model_ref: mock
  tools: [web-search]
  memory: {ref: default/notes, allow: [Write, memory.search, read, write]}
"""
    )
    result = load_paths([file])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    assert result.catalog.memories["notes"].spec.provider == "in-memory"
    agent: Agent = result.catalog.agents["a"]
    assert agent.spec.memory is not None and agent.spec.memory.ref == "notes"
    assert agent.spec.granted_tools == [
        "web-search",
        "memory.write",
        "memory.search",
        "memory.read",
    ]
    memory: Memory | None = result.catalog.memory_of("a")
    assert memory is not None and memory.name == "notes"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {provider: redis}",
            "m.yaml:20: Memory/m: spec.provider: 'redis' is not one of in-memory, postgres, "
            "pgvector, http",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {provider: http}",
            "Memory/m: spec: provider http needs `endpoint`, an http(s) URL",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {provider: pgvector}",
            "provider pgvector needs `embedding_model` (a ModelEndpoint); for keyword search "
            "without embeddings use provider postgres",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {provider: postgres, endpoint: mysql://x}",
            "provider postgres: `endpoint` is a PostgreSQL DSN",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {endpoint: http://x}",
            "`endpoint` has no use with provider in-memory",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {provider: postgres, embedding_model: nope}",
            "m.yaml:20: Memory/m: ModelEndpoint 'nope' is not defined",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {provider: postgres, "
            "embedding_model: chat-only}",
            "ModelEndpoint/chat-only is provider anthropic, which has no embeddings API",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec:\n  provider: http\n"
            "  endpoint: http://127.0.0.1:9\n  auth: {secretRef: 'adapter-key:token'}",
            "Secret/adapter-key has no key 'token' (it has value)",
        ),
        (
            "kind: Memory\nmetadata: {name: m}\nspec: {options: {table: t}}",
            "unknown field 'options' in spec",
        ),
        (
            "kind: Agent\nmetadata: {name: a}\nspec: {model_ref: mock, memory: {ref: gone}}",
            "m.yaml:20: Agent/a: Memory 'gone' is not defined",
        ),
        (
            "kind: Agent\nmetadata: {name: a}\nspec: {model_ref: mock, memory: {allow: [read]}}",
            "Agent/a: missing required field 'spec.memory.ref'",
        ),
        (
            "kind: Agent\nmetadata: {name: a}\nspec: {model_ref: mock, tools: [memory.read]}",
            "memory.read comes from `memory: {ref: <Memory>, allow: [read]}`, not from `tools`",
        ),
        (
            "kind: Agent\nmetadata: {name: a}\n"
            "spec: {model_ref: mock, memory: {ref: x, allow: [delete]}}",
            "'delete' is not a memory operation: use read, write, search, list, ingest",
        ),
        (
            "kind: Agent\nmetadata: {name: a}\n"
            "spec: {model_ref: mock, memory: {ref: x, provider: in-memory}}",
            "unknown field 'provider' in spec.memory",
        ),
    ],
)
def test_a_wrong_memory_is_refused_with_its_place_and_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(tmp_path, "apiVersion: orloj.dev/v1\n" + text + "\n")
    assert any(expected in p for p in found), found
