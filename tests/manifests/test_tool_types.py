"""Orloj's tool types beyond http (`external`, `webhook-callback`, `grpc`, `wasm`): Orloj's
examples and docs' manifests validate, and what each type needs is refused with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from manifests.loader import load_paths
from manifests.models import Tool

HERE = Path(__file__).resolve().parent
TYPES, SECRETS = HERE / "orloj_tool_types", HERE / "orloj_secrets"
GOVERNANCE = {"capabilities"}, {"isolation_mode"}, {"max_backoff", "jitter", "backoff"}
"""Fields of Orloj's wasm example that are not this change's (Tool governance and retry)."""


def problems(tmp_path: Path, spec: str) -> list[str]:
    file = tmp_path / "m.yaml"
    file.write_text(f"apiVersion: orloj.dev/v1\nkind: Tool\nmetadata: {{name: t}}\nspec: {spec}\n")
    return [str(e) for e in load_paths([file]).errors]


def test_orloj_examples_and_docs_tools_validate(tmp_path: Path) -> None:
    # Orloj's wasm example, without the governance fields that another change brings.
    yaml = YAML()
    wasm = yaml.load(TYPES / "wasm_echo_tool.yaml")
    spec, runtime = wasm["spec"], wasm["spec"]["runtime"]
    for field in GOVERNANCE[0]:
        del spec[field]
    for field in GOVERNANCE[1]:
        del runtime[field]
    for field in GOVERNANCE[2]:
        del runtime["retry"][field]
    folder = tmp_path / "types"
    folder.mkdir()
    for file in TYPES.glob("*.yaml"):
        if file.name != "wasm_echo_tool.yaml":
            (folder / file.name).write_text(file.read_text())
    with (folder / "wasm_echo_tool.yaml").open("w") as out:
        yaml.dump(wasm, out)
    result = load_paths([folder, SECRETS])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    tools = result.catalog.tools
    assert {name: tools[name].spec.type for name in tools} == {
        "async-tool": "webhook-callback",
        "ext-tool": "external",
        "grpc-tool": "grpc",
        "vector_db": "http",
        "wasm_echo": "wasm",
        "web_search": "http",
    }
    assert tools["wasm_echo"].spec.endpoint is None  # the operator's module runs
    assert tools["grpc-tool"].spec.endpoint == "your-grpc-service:50051"


def test_the_type_is_read_as_orloj_does() -> None:
    tool = Tool.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "Tool",
            "metadata": {"name": "t"},
            "spec": {"type": " GRPC ", "endpoint": "[::1]:50051"},
        }
    )
    assert tool.spec.type == "grpc"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{type: external}", "a tool of type external needs `endpoint: http(s)://...`"),
        (
            "{type: webhook-callback, endpoint: 'ftp://x/y'}",
            "a tool of type webhook-callback needs `endpoint: http(s)://...`",
        ),
        (
            "{type: grpc, endpoint: 'http://svc:50051'}",
            "a tool of type grpc needs `endpoint: host:port`",
        ),
        ("{type: grpc}", "a tool of type grpc needs `endpoint: host:port`"),
        (
            "{type: wasm, endpoint: '../etc/x.wasm'}",
            "the `endpoint` of a wasm tool names its module",
        ),
        ("{type: wasm, endpoint: 'tool.py'}", "the `endpoint` of a wasm tool names its module"),
        ("{type: queue, endpoint: 'http://x'}", "spec.type"),
        (
            "{type: wasm, endpoint: a.wasm, auth: {secretRef: k}}",
            "`auth` applies to tools of type http, external, webhook-callback and grpc",
        ),
    ],
)
def test_what_a_type_needs_is_refused_with_the_fix(
    tmp_path: Path, spec: str, expected: str
) -> None:
    found = problems(tmp_path, spec)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    "spec",
    [
        "{type: external, endpoint: 'http://127.0.0.1:8080/run', auth: {secretRef: k}}",
        "{type: webhook-callback, endpoint: 'https://jobs.internal/submit'}",
        "{type: grpc, endpoint: 'dns:///tools.internal:443'}",
        "{type: wasm, endpoint: 'team/echo.wat'}",
        "{type: wasm}",
    ],
)
def test_each_type_accepts_its_endpoint(tmp_path: Path, spec: str) -> None:
    found = [p for p in problems(tmp_path, spec) if "Secret 'k'" not in p]
    assert found == []
