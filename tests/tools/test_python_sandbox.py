"""`python` tools: only from operator-allowed modules, each call in a child process of its own,
with a timeout that kills and memory and CPU limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.settings import ActorSettings
from actors.tools import (
    PythonSandbox,
    ToolInvocation,
    ToolRegistry,
    UnsupportedToolError,
)
from tests.helpers import wait_until
from tests.tools.manifests_helpers import tool

SANDBOX = PythonSandbox(allowed_modules=("tests.tools",), memory_mb=256, cpu_s=2)


def call(name: str, timeout_s: float = 10.0, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool=name, arguments=dict(arguments), idempotency_key="t/s/0", timeout_s=timeout_s
    )


def python_tool(name: str, endpoint: str, **spec: object) -> dict[str, object]:
    return {name: tool(name, type="python", endpoint=endpoint, **spec)}


async def test_python_tools_are_refused_unless_their_module_is_allowed() -> None:
    registry = ToolRegistry(python_tool("shell", "subprocess:getoutput"))
    try:
        result = await registry.invoke(call("shell", cmd="echo pwned"))
        assert not result.ok, result
        assert "pwned" not in result.content
        assert "subprocess" in result.error
        assert "PODIUM_ACTOR_PYTHON_TOOL_MODULES" in result.error
        with pytest.raises(UnsupportedToolError, match="PODIUM_ACTOR_PYTHON_TOOL_MODULES"):
            registry.spec_for("shell")
    finally:
        await registry.aclose()


async def test_allowed_modules_are_packages_and_reexports_are_refused() -> None:
    tools = {
        **python_tool("shell", "subprocess:getoutput"),
        **python_tool("lookalike", "tests.toolsmith:run"),
        **python_tool("cwd", "tests.tools.sample_tools:getcwd"),
        **python_tool("add", "tests.tools.sample_tools:add"),
    }
    registry = ToolRegistry(tools, python=SANDBOX)
    try:
        assert "shell" not in registry and "lookalike" not in registry
        assert (await registry.invoke(call("add", a=1, b=2))).content == '{"sum": 3}'
        cwd = await registry.invoke(call("cwd"))
        assert not cwd.ok and cwd.content == "the tool is not available"
        assert "posix" in cwd.error
    finally:
        await registry.aclose()


async def test_python_tools_run_in_a_child_without_the_services_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODIUM_POLICY_HMAC_KEY", "the-signing-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-vendor")
    tools = {
        **python_tool("pid", "tests.tools.sample_tools:pid"),
        **python_tool("env", "tests.tools.sample_tools:environment"),
        **python_tool("chatty", "tests.tools.sample_tools:chatty"),
    }
    registry = ToolRegistry(tools, python=SANDBOX)
    try:
        pid = await registry.invoke(call("pid"))
        assert pid.ok and int(pid.content) != os.getpid()
        env = await registry.invoke(call("env"))
        assert env.ok
        assert "PODIUM_POLICY_HMAC_KEY" not in env.content and "OPENAI_API_KEY" not in env.content
        chatty = await registry.invoke(call("chatty"))
        assert chatty.ok and chatty.content == "quiet result"
    finally:
        await registry.aclose()


async def test_a_timed_out_python_tool_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    registry = ToolRegistry(
        python_tool("sleeper", "tests.tools.sample_tools:sleeper", runtime={"timeout": "2s"}),
        python=SANDBOX,
    )
    try:
        result = await registry.invoke(call("sleeper", timeout_s=2, pid_file=str(pid_file)))
    finally:
        await registry.aclose()
    assert not result.ok and "timed out" in result.content
    child = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_until(gone, timeout=5)


async def test_memory_and_cpu_limits() -> None:
    tools = {
        **python_tool("hog", "tests.tools.sample_tools:hog"),
        **python_tool("burn", "tests.tools.sample_tools:burn", runtime={"timeout": "60s"}),
    }
    registry = ToolRegistry(
        tools, python=PythonSandbox(allowed_modules=("tests.tools",), memory_mb=256, cpu_s=1)
    )
    try:
        hog = await registry.invoke(call("hog", megabytes=512))
        assert not hog.ok and hog.content == "tool hog failed (MemoryError)", hog
        small = await registry.invoke(call("hog", megabytes=8))
        assert small.ok and small.content == str(8 * 1024 * 1024)
        burn = await registry.invoke(call("burn", timeout_s=60))
        assert not burn.ok and burn.content == "tool burn failed (exceeded its limits)", burn
        assert "CPU" in burn.error
    finally:
        await registry.aclose()


def test_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ActorSettings().python_tool_modules == []
    monkeypatch.setenv("PODIUM_ACTOR_PYTHON_TOOL_MODULES", "tests.tools, mytools.search")
    monkeypatch.setenv("PODIUM_ACTOR_PYTHON_TOOL_MEMORY_MB", "300")
    sandbox = PythonSandbox.from_settings(ActorSettings())
    assert sandbox.allowed_modules == ("tests.tools", "mytools.search")
    assert sandbox.memory_mb == 300
    monkeypatch.setenv("PODIUM_ACTOR_PYTHON_TOOL_MODULES", "bad module!")
    with pytest.raises(ValueError, match="bad"):
        ActorSettings()


async def test_a_large_result_comes_back_whole_up_to_the_cap() -> None:
    registry = ToolRegistry(python_tool("big", "tests.tools.sample_tools:big"), python=SANDBOX)
    try:
        result = await registry.invoke(call("big", chars=300_000))
    finally:
        await registry.aclose()
    assert result.ok, result
    assert result.content == "é" * 100_000
