"""Broken manifests: every problem is reported at once, as `file:line: Kind/name: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths

BASE = """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata:
  name: openai
spec:
  provider: openai
  api_key_env: OPENAI_API_KEY
---
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: researcher
spec:
  model: {endpoint: openai, model: gpt-4o}
  tools: [web-search]
---
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: writer
spec:
  model: {endpoint: openai, model: gpt-4o-mini}
---
"""
OFFSET = BASE.count("\n")

# (id, document appended to BASE, line within the document (1-based), exact error after "file:")
CASES: list[tuple[str, str, int, str]] = [
    (
        "unknown-field",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model: {endpoint: openai, model: gpt-4o}
  limitz: {max_steps: 3}
""",
        7,
        "Agent/analyst: unknown field 'limitz' in spec; did you mean 'limits'?",
    ),
    (
        "unknown-kind",
        """\
apiVersion: orloj.dev/v1
kind: Agnet
metadata:
  name: analyst
spec: {}
""",
        2,
        "unknown kind 'Agnet'; did you mean 'Agent'? (kinds: Agent, AgentSystem, AgentPolicy, "
        "AgentRole, ToolPermission, ModelEndpoint, Tool, McpServer, Memory, Task, TaskSchedule, "
        "Secret, TaskWebhook, Worker)",
    ),
    (
        "misspelt-tool",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model: {endpoint: openai, model: gpt-4o}
  tools:
    - read-url
    - web-serch
""",
        9,
        "Agent/analyst: tool 'web-serch' is not defined; did you mean 'web-search'?",
    ),
    (
        "missing-endpoint",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model:
    endpoint: opnai
    model: gpt-4o
""",
        7,
        "Agent/analyst: ModelEndpoint 'opnai' is not defined; did you mean 'openai'?",
    ),
    (
        "wrong-type",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model: {endpoint: openai, model: gpt-4o}
  limits:
    max_steps: many
""",
        8,
        "Agent/analyst: spec.limits.max_steps: Input should be a valid integer, unable to parse "
        "string as an integer",
    ),
    (
        "bad-duration",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model: {endpoint: openai, model: gpt-4o}
  limits:
    timeout: soon
""",
        8,
        "Agent/analyst: spec.limits.timeout: 'soon' is not a duration; write it like 30s, 2m, "
        "1h or 250ms",
    ),
    (
        "duplicate-name",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: writer
spec:
  model: {endpoint: openai, model: gpt-4o}
""",
        4,
        "Agent/writer: defined twice; the first definition is at {file}:17",
    ),
    (
        "cycle-without-exit",
        """\
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents: [researcher, writer]
  graph:
    researcher:
      next: writer
    writer:
      next: researcher
""",
        8,
        "AgentSystem/s: cycle researcher -> writer -> researcher has neither `exit_when` nor "
        "`max_iterations`; set them on the node that closes the loop",
    ),
    (
        "join-shorthand-on-a-routed-branch",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: editor
spec:
  model: {endpoint: openai, model: gpt-4o}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: checker
spec:
  model: {endpoint: openai, model: gpt-4o}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents: [researcher, writer, editor, checker]
  graph:
    researcher:
      fan_out: [editor, checker]
      join: writer
    editor:
      next: checker
""",
        24,
        "AgentSystem/s: branch 'editor' of this fan_out has edges of its own, so `join: writer` "
        "here would also send it straight to 'writer'; for branches longer than one agent, give "
        "'writer' `join: {mode: wait_for_all}` and end each branch with `next: writer`",
    ),
    (
        "join-single-input",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: editor
spec:
  model: {endpoint: openai, model: gpt-4o}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents: [researcher, writer, editor]
  graph:
    researcher:
      fan_out: [editor]
      join: writer
""",
        17,
        "AgentSystem/s: join 'writer' has 1 input; a join needs at least 2",
    ),
    (
        "max-iterations-zero",
        """\
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents: [researcher, writer]
  graph:
    researcher:
      next: writer
    writer:
      next: researcher
      max_iterations: 0
""",
        12,
        "AgentSystem/s: spec.graph.writer.max_iterations: must be at least 1",
    ),
    (
        "system-unknown-agent",
        """\
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents:
    - researcher
    - writter
""",
        8,
        "AgentSystem/s: agent 'writter' is not defined; did you mean 'writer'?",
    ),
    (
        "edge-outside-system",
        """\
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents: [researcher]
  graph:
    researcher:
      edges:
        - to: writer
""",
        10,
        "AgentSystem/s: 'writer' is not one of the system's agents",
    ),
    (
        "policy-unknown-system",
        """\
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata:
  name: p
spec:
  scope:
    system: report-system
""",
        7,
        "AgentPolicy/p: AgentSystem 'report-system' is not defined",
    ),
    (
        "bad-provider",
        """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata:
  name: other
spec:
  provider: antropic
""",
        6,
        "ModelEndpoint/other: spec.provider: 'antropic' is not one of openai, anthropic, "
        "azure-openai, ollama, openai-compatible, bedrock, mock; did you mean 'anthropic'?",
    ),
    (
        "missing-model",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  description: no model at all
""",
        5,
        "Agent/analyst: spec: the agent has no model: add `model: {endpoint: <ModelEndpoint>, "
        "model: <name>}` or `model_ref: <ModelEndpoint>`",
    ),
    (
        "model-ref-without-default",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model_ref: openai
""",
        6,
        "Agent/analyst: ModelEndpoint/openai has no `default_model`; add one, or use "
        "`model: {endpoint, model}`",
    ),
    (
        "not-a-mapping",
        """\
- apiVersion: orloj.dev/v1
  kind: Agent
""",
        1,
        "a manifest must be a mapping with apiVersion, kind, metadata and spec; found a list",
    ),
    (
        "yaml-syntax",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: [analyst
spec: {}
""",
        5,
        "invalid YAML: expected ',' or ']', but got ':'",
    ),
    (
        "bad-name",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: "my agent!"
spec:
  model: {endpoint: openai, model: gpt-4o}
""",
        4,
        "spec.metadata.name: must start",
    ),
    (
        "reserved-tool",
        """\
apiVersion: orloj.dev/v1
kind: Agent
metadata:
  name: analyst
spec:
  model: {endpoint: openai, model: gpt-4o}
  tools: [delegate]
""",
        7,
        "Agent/analyst: tool name 'delegate' is reserved (supervisors get it from `delegates_to`)",
    ),
    (
        "mcp-env-two-sources",
        """\
apiVersion: orloj.dev/v1
kind: McpServer
metadata:
  name: gmail
spec:
  transport: stdio
  image: mcp/gmail
  env:
    - name: TOKEN
      value: abc
      secretRef: creds/token
""",
        9,
        "McpServer/gmail: spec.env[0]: env TOKEN: set exactly one of `value` or `secretRef`",
    ),
    (
        "two-default-edges",
        """\
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: s
spec:
  agents: [researcher, writer]
  graph:
    researcher:
      edges:
        - {to: writer, when: ok}
        - {to: writer}
        - {to: writer}
""",
        9,
        "AgentSystem/s: conditional edges may have one default (an edge without `when`), found 2",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_mistake_is_reported_with_its_line(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(BASE + text)
    result = load_paths([file])
    assert result.catalog is None
    expected = expected.replace("{file}", str(file))
    rendered = [str(e) for e in result.errors]
    prefix = f"{file}:{OFFSET + line}: "
    if expected.startswith("spec.metadata.name"):  # the name is invalid, so no Kind/name
        assert any(r.startswith(prefix) and "metadata.name: must start" in r for r in rendered), (
            rendered
        )
        return
    assert rendered == [prefix + expected], rendered


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = BASE + "".join(c[1] + "---\n" for c in CASES if c[0] not in ("yaml-syntax",))
    file = tmp_path / "all.yaml"
    file.write_text(text)
    result = load_paths([file])
    assert len(result.errors) >= 15
    assert all(str(e).startswith(f"{file}:") for e in result.errors)


def test_yaml_error_in_one_file_does_not_hide_another(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: [\n")
    (tmp_path / "b.yaml").write_text("apiVersion: orloj.dev/v1\nkind: Tool\nmetadata: {name: t}\n")
    result = load_paths([tmp_path])
    files = [(Path(e.file).name, e.line) for e in result.errors]
    assert ("a.yaml", 2) in files
    assert ("b.yaml", 1) in [(f, line) for f, line in files if f == "b.yaml"] or any(
        f == "b.yaml" for f, _ in files
    )


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = load_paths([tmp_path / "nope.yaml", tmp_path / "empty"])
    assert [e.message for e in result.errors] == [
        "no *.yaml, *.yml or *.json files in this folder or below",
        "no such file or folder",
    ]


def test_cascading_references_are_not_reported(tmp_path: Path) -> None:
    """An endpoint with its own mistake is not reported again as missing by its agents."""
    text = BASE.replace("provider: openai", "provider: openal")
    file = tmp_path / "x.yaml"
    file.write_text(text)
    result = load_paths([file])
    assert [e.message for e in result.errors] == [
        "spec.provider: 'openal' is not one of openai, anthropic, azure-openai, ollama, "
        "openai-compatible, bedrock, mock; did you mean 'openai'?"
    ]


def test_a_folder_is_walked_as_orlojs_apply_walks_it(tmp_path: Path) -> None:
    """Subfolders too (Orloj's use cases keep their agents in `agents/`), `.json` files too, but
    not `.git`."""
    agents = BASE.split("---\n")
    (tmp_path / "agents").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "bad.yaml").write_text("kind: Nope\n")
    (tmp_path / "notes.txt").write_text("kind: Nope\n")
    for i, document in enumerate(agents):
        folder = tmp_path / "agents" if "kind: Agent\n" in document else tmp_path
        (folder / f"{i}.yaml").write_text(document)
    result = load_paths([tmp_path])
    assert result.errors == []
    assert result.catalog is not None
    assert sorted(result.catalog.agents) == ["researcher", "writer"]
    (tmp_path / "agents" / "broken.json").write_text('{"kind": "Nope"}')
    assert [e.message for e in load_paths([tmp_path]).errors] == [
        "unknown kind 'Nope' (kinds: Agent, AgentSystem, AgentPolicy, AgentRole, ToolPermission, "
        "ModelEndpoint, Tool, McpServer, Memory, Task, TaskSchedule, Secret, TaskWebhook, Worker)"
    ]
