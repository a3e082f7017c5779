"""Orloj v0.3's governance format read as Orloj normalises it: AgentRole's permission strings,
ToolPermission's gates, AgentPolicy's targets, Tool's capabilities, operation classes, isolation
and retry, and the Worker kind; what Podium cannot honour is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths
from manifests.models import AgentRole, RetryPolicy, Tool, ToolPermission, Worker

HERE = Path(__file__).resolve().parent
GOVERNANCE = HERE / "orloj_governance"
WASM = HERE / "orloj_wasm"


def problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "m.yaml"
    file.write_text(text)
    return [e.message for e in load_paths([file]).errors]


def loaded(tmp_path: Path, text: str) -> list[object]:
    file = tmp_path / "m.yaml"
    file.write_text(text)
    result = load_paths([file])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    return list(result.catalog.resources())


def test_orlojs_governance_examples_validate_on_their_own() -> None:
    result = load_paths([GOVERNANCE])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    role = result.catalog.roles["analyst-role"]
    assert role.spec.description == "Can call web search style tools."
    assert role.spec.granted == {"tool:web_search:invoke", "capability:web.read"}
    permission = result.catalog.tool_permissions["web-search-invoke"]
    assert permission.gates and permission.tool_name == "web_search"
    assert permission.spec.required_permissions == ["tool:web_search:invoke", "capability:web.read"]
    worker = result.catalog.workers["worker-a"]
    assert (worker.spec.region, worker.spec.max_concurrent_tasks) == ("default", 1)
    assert worker.spec.capabilities.supported_models == ["gpt-4o"]


def test_the_wasm_reference_tool_validates_with_its_governance_fields() -> None:
    """capabilities, isolation_mode wasm and the retry fields, on a tool of type wasm."""
    messages = [e.message for e in load_paths([WASM]).errors]
    assert messages == []


def test_role_permissions_are_trimmed_and_deduplicated_ignoring_case(tmp_path: Path) -> None:
    (role,) = loaded(
        tmp_path,
        """\
apiVersion: orloj.dev/v1
kind: AgentRole
metadata: {name: r}
spec:
  permissions: ["  tool:Web-Search:invoke ", "TOOL:web-search:INVOKE", "", capability:x]
""",
    )
    assert isinstance(role, AgentRole)
    assert role.spec.permissions == ["tool:Web-Search:invoke", "capability:x"]
    assert role.spec.granted == {"tool:web_search:invoke", "capability:x"}
    assert role.spec.max_steps is None and role.spec.tools == []


def test_podiums_role_grants_tool_permissions(tmp_path: Path) -> None:
    role = AgentRole.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "AgentRole",
            "metadata": {"name": "r"},
            "spec": {"permissions": {"tools": ["web-search"], "max_steps": 3}},
        }
    )
    assert role.spec.granted == {"tool:web_search:invoke"}
    assert role.spec.max_steps == 3


def test_tool_permission_defaults_and_normalisation(tmp_path: Path) -> None:
    (permission,) = loaded(
        tmp_path,
        """\
apiVersion: orloj.dev/v1
kind: ToolPermission
metadata: {name: db}
spec:
  match_mode: ANY
  apply_mode: " Scoped "
  target_agents: [a, A, " b "]
  required_permissions: [p, P, q]
  operation_rules:
    - {operation_class: WRITE, verdict: Approval_Required}
    - {verdict: deny}
    - {operation_class: read}
""",
    )
    assert isinstance(permission, ToolPermission)
    assert permission.tool_name == "db"  # tool_ref defaults to the name
    spec = permission.spec
    assert (spec.action, spec.match_mode, spec.apply_mode) == ("invoke", "any", "scoped")
    assert spec.target_agents == ["a", "b"]
    assert spec.required_permissions == ["p", "q"]
    assert [(r.operation_class, r.verdict) for r in spec.operation_rules] == [
        ("write", "approval_required"),
        ("*", "deny"),
        ("read", "allow"),
    ]
    assert permission.applies_to("A") and not permission.applies_to("c")


def test_podiums_tool_permission_is_no_gate(tmp_path: Path) -> None:
    (permission,) = loaded(
        tmp_path,
        """\
apiVersion: orloj.dev/v1
kind: ToolPermission
metadata: {name: p}
spec: {tool: web-search, approval_required: true}
""",
    )
    assert isinstance(permission, ToolPermission)
    assert not permission.gates and permission.tool_name == "web-search"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{tool_ref: x, apply_mode: scoped}", "`target_agents` is required"),
        ("{tool_ref: x, match_mode: some}", "spec.match_mode"),
        ("{tool_ref: x, apply_mode: local}", "spec.apply_mode"),
        ("{tool_ref: x, operation_rules: [{operation_class: exec}]}", "operation_class"),
        ("{tool_ref: x, operation_rules: [{verdict: maybe}]}", "verdict"),
        ("{tool: x, tool_ref: y}", "name different tools"),
    ],
)
def test_tool_permission_mistakes(tmp_path: Path, spec: str, expected: str) -> None:
    text = f"apiVersion: orloj.dev/v1\nkind: ToolPermission\nmetadata: {{name: p}}\nspec: {spec}\n"
    messages = problems(tmp_path, text)
    assert len(messages) == 1 and expected in messages[0], messages


def test_policy_target_systems_are_filters_but_target_tasks_are_refused(tmp_path: Path) -> None:
    policy = "apiVersion: orloj.dev/v1\nkind: AgentPolicy\nmetadata: {name: p}\nspec: %s\n"
    assert problems(tmp_path, policy % "{apply_mode: scoped, target_systems: [elsewhere]}") == []
    (message,) = problems(tmp_path, policy % "{apply_mode: scoped, target_tasks: [weekly]}")
    assert "`target_tasks` is not supported yet" in message


TOOL = "apiVersion: orloj.dev/v1\nkind: Tool\nmetadata: {name: t}\nspec: %s\n"


def test_tool_capabilities_operation_classes_and_defaults(tmp_path: Path) -> None:
    (tool,) = loaded(
        tmp_path,
        TOOL % "{endpoint: 'http://x/t', capabilities: [' Web.Read', web.read, w], "
        "operation_classes: [WRITE, ' delete', write]}",
    )
    assert isinstance(tool, Tool)
    assert tool.spec.capabilities == ["Web.Read", "w"]
    assert tool.spec.operations == ("write", "delete")
    high = Tool.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "Tool",
            "metadata": {"name": "h"},
            "spec": {"endpoint": "http://x/h", "risk_level": "High"},
        }
    )
    assert high.spec.operations == ("write",) and high.spec.isolation == "none"
    low = Tool.model_validate({**high.model_dump(by_alias=True), "spec": {"endpoint": "http://x"}})
    assert low.spec.operations == ("read",)


def test_tool_retry_accepts_orlojs_fields(tmp_path: Path) -> None:
    (tool,) = loaded(
        tmp_path,
        TOOL % "{endpoint: 'http://x/t', runtime: {retry: {max_attempts: 2, backoff: 0s, "
        "max_backoff: 1s, jitter: EQUAL}}}",
    )
    assert isinstance(tool, Tool)
    retry = tool.spec.runtime.retry
    assert (retry.backoff, retry.max_backoff_s, retry.jitter) == (0.0, 1.0, "equal")
    assert RetryPolicy().jitter == "full"  # Podium's default stays
    (message,) = problems(tmp_path, TOOL % "{endpoint: 'http://x', runtime: {retry: {jitter: x}}}")
    assert "jitter" in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{endpoint: 'http://x', runtime: {isolation_mode: container}}", "no container runtime"),
        ("{endpoint: 'http://x', runtime: {isolation_mode: sandboxed}}", "sandboxes python"),
        ("{endpoint: 'http://x', runtime: {isolation_mode: wasm}}", "type wasm only"),
        ("{endpoint: 'http://x', runtime: {isolation_mode: vm}}", "isolation_mode"),
        ("{endpoint: 'http://x', operation_classes: [exec]}", "operation_classes"),
    ],
)
def test_tool_isolation_podium_cannot_honour_is_refused(
    tmp_path: Path, spec: str, expected: str
) -> None:
    messages = problems(tmp_path, TOOL % spec)
    assert len(messages) == 1 and expected in messages[0], messages


def test_python_tools_run_sandboxed_whatever_the_mode(tmp_path: Path) -> None:
    for mode in ("none", "sandboxed"):
        (tool,) = loaded(
            tmp_path,
            TOOL % f"{{type: python, endpoint: 'm:f', runtime: {{isolation_mode: {mode}}}}}",
        )
        assert isinstance(tool, Tool) and tool.spec.isolation == mode
    (default,) = loaded(tmp_path, TOOL % "{type: python, endpoint: 'm:f'}")
    assert isinstance(default, Tool) and default.spec.isolation == "sandboxed"


def test_worker_fields(tmp_path: Path) -> None:
    text = "apiVersion: orloj.dev/v1\nkind: Worker\nmetadata: {name: w}\nspec: %s\n"
    (worker,) = loaded(tmp_path, text % "{max_concurrent_tasks: 0}")
    assert isinstance(worker, Worker) and worker.spec.max_concurrent_tasks == 1
    (message,) = problems(tmp_path, text % "{capabilities: {cpu: 4}}")
    assert "cpu" in message
