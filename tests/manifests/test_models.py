"""Both spellings, normalised accessors, the compiler's patterns, and the schema files."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.compile import compile_system
from manifests.loader import load_paths
from manifests.models import Agent, AgentPolicy, AgentSystem
from manifests.schema_export import SCHEMA_DIR, schemas
from topics.names import TopicNames
from topics.routing import RouteEdge

HEAD = "apiVersion: orloj.dev/v1\n"
ENDPOINTS = """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: main}
spec: {provider: mock, default_model: m-1}
---
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: backup}
spec: {provider: openai-compatible, base_url: "http://127.0.0.1:1/v1", default_model: m-2}
---
"""


def agent(name: str, extra: str = "") -> str:
    return f"{HEAD}kind: Agent\nmetadata: {{name: {name}}}\nspec:\n  model_ref: main\n{extra}---\n"


def system(graph: str, agents: str) -> AgentSystem:
    return AgentSystem.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "AgentSystem",
            "metadata": {"name": "s"},
            "spec": {"agents": agents.split(), "graph": _yaml(graph)},
        }
    )


def _yaml(text: str) -> object:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(text)


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    file = tmp_path / "m.yaml"
    file.write_text(text)
    result = load_paths([file])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    return result.catalog


def test_agent_spellings_and_defaults(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        ENDPOINTS
        + agent("a", "  tools: [none]\n  fallback_model_refs: [backup]\n")
        + agent("b", "  limits: {max_steps: 3, timeout: 2m}\n  tools: [web-search]\n"),
    )
    a, b = catalog.agents["a"], catalog.agents["b"]
    assert isinstance(a, Agent)
    assert a.spec.tools == []
    assert (a.spec.limits.max_steps, a.spec.limits.timeout_s) == (10, 120.0)
    assert (b.spec.limits.max_steps, b.spec.limits.timeout_s) == (3, 120.0)
    assert b.spec.tools == ["web-search"]
    endpoint, model = catalog.model_for("a")
    assert (endpoint.name, model) == ("main", "m-1")
    assert [(e.name, m) for e, m in catalog.fallbacks_for("a")] == [("backup", "m-2")]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("60s", 60.0), ("2m", 120.0), (45, 45.0), ("1.5h", 5400.0), ("250ms", 0.25)],
)
def test_durations(raw: object, seconds: float) -> None:
    value = Agent.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "Agent",
            "metadata": {"name": "a"},
            "spec": {"model_ref": "main", "limits": {"timeout": raw}},
        }
    )
    assert value.spec.limits.timeout_s == seconds


def policy(spec: dict[str, object]) -> AgentPolicy:
    return AgentPolicy.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "AgentPolicy",
            "metadata": {"name": "p"},
            "spec": spec,
        }
    )


def test_policy_spellings() -> None:
    tutorial = policy(
        {
            "scope": {"system": "s1"},
            "rules": {
                "max_tokens_per_task": 50000,
                "max_cost_per_task_usd": 0.5,
                "allowed_models": ["gpt-4o"],
                "denied_tools": ["execute-code"],
            },
        }
    )
    orloj = policy(
        {
            "apply_mode": "scoped",
            "target_systems": ["s1"],
            "max_tokens_per_run": 40000,
            "blocked_tools": ["rm"],
            "denied_tools": ["dd"],
            "approval_required_tools": ["pay"],
        }
    )
    everywhere = policy({"max_cost_per_task_usd": 1})
    assert tutorial.max_tokens_per_task == 50000
    assert orloj.max_tokens_per_task == 40000
    assert tutorial.max_cost_per_task_usd == 0.5
    assert orloj.max_cost_per_task_usd is None
    assert tutorial.allowed_models == ["gpt-4o"]
    assert orloj.allowed_models is None
    assert orloj.denied_tools == ["dd", "rm"]
    assert orloj.approval_required_tools == ["pay"]
    assert tutorial.audit.log_all_tool_calls
    for p in (tutorial, orloj):
        assert p.applies_to("s1", "x")
        assert not p.applies_to("s2", "x")
    assert everywhere.applies_to("any", "agent")
    agents_only = policy({"target_agents": ["w"]})
    assert agents_only.applies_to("s", "w") and not agents_only.applies_to("s", "v")


def edges(table_node: list[RouteEdge]) -> list[tuple[str, str, str | None]]:
    return [(e.to, e.kind, e.when) for e in table_node]


def test_a_node_with_several_inputs_and_no_join_gets_an_implicit_join() -> None:
    table = compile_system(
        system("a: {edges: [{to: b}, {to: c}]}\nb: {next: d}\nc: {next: d}", "a b c d"),
        TopicNames("pfx"),
    )
    join = table.nodes["d"].join
    assert join is not None and join.inputs == ["b", "c"] and join.implicit
    explicit = compile_system(
        system("a: {fan_out: [b, c], join: d}", "a b c d"), TopicNames("pfx")
    ).nodes["d"]
    assert explicit.join is not None and not explicit.join.implicit
    loop = compile_system(
        system(
            "w: {next: r}\nr: {edges: [{to: w, when: revise}, {to: p, when: ok}],"
            " exit_when: ok, max_iterations: 2}",
            "w r p",
        ),
        TopicNames("pfx"),
    )
    assert loop.nodes["w"].join is None  # a loop's way back is not a second input
    assert all(
        node.join is None
        for node in compile_system(
            system("a: {next: b}\nb: {next: c}", "a b c"), TopicNames("pfx")
        ).nodes.values()
    )


def test_compile_patterns() -> None:
    names = TopicNames("pfx")
    conditional = compile_system(
        system(
            "a: {edges: [{to: b, when: yes}, {to: c}]}\n"
            "b: {next: d}\nc: {next: d}\nd: {join: {mode: wait_for_all}}",
            "a b c d",
        ),
        names,
    )
    node = conditional.nodes["a"]
    assert edges(node.edges) == [("b", "conditional", "yes"), ("c", "conditional", None)]
    assert node.outcomes == ["yes"]
    assert node.topic == "pfx.agent.a" and node.group == "pfx.actor.a"
    assert conditional.nodes["d"].join is not None
    assert conditional.nodes["d"].join.inputs == ["b", "c"]
    assert conditional.entry == ["a"]

    parallel = compile_system(system("a: {edges: [{to: b}, {to: c}]}", "a b c"), names)
    assert edges(parallel.nodes["a"].edges) == [("b", "fan_out", None), ("c", "fan_out", None)]

    loop = compile_system(
        system(
            "w: {next: r}\n"
            "r: {edges: [{to: w, when: revise}, {to: p, when: ok}],"
            " exit_when: ok, max_iterations: 2}",
            "w r p",
        ),
        names,
    )
    assert edges(loop.nodes["r"].edges) == [("w", "loop", "revise"), ("p", "conditional", "ok")]
    assert loop.nodes["r"].outcomes == ["ok", "revise"]
    assert loop.nodes["r"].max_iterations == 2
    assert loop.entry == ["w"]

    selfloop = compile_system(system("a: {next: a, max_iterations: 3}", "a"), names)
    assert edges(selfloop.nodes["a"].edges) == [("a", "loop", None)]


def test_compile_rejects_unvalidated_graph() -> None:
    with pytest.raises(ValueError, match="cycle"):
        compile_system(system("a: {next: b}\nb: {next: a}", "a b"))


def test_schema_files_match_models() -> None:
    for name, text in schemas().items():
        path = SCHEMA_DIR / name
        assert path.is_file(), f"{name} missing: run python -m manifests.schema_export"
        assert path.read_text() == text, f"{name} drifted: run python -m manifests.schema_export"
