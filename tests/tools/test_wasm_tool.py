"""`type: wasm` tools run by wasmtime under Orloj's stdin/stdout contract: Orloj's reference
guest, a guest that answers its request, and guests that trap, loop, overgrow their memory,
answer badly or fail; the module must lie in the operator's folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from actors.settings import ActorSettings
from actors.tools import ToolInvocation, ToolOptions, ToolRegistry
from tests.helpers import scaled, wait_until
from tests.tools import wasm_guests
from tests.tools.manifests_helpers import tool


def invocation(name: str, timeout_s: float = 10.0, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool=name, arguments=dict(arguments), idempotency_key="t1/s1/0", timeout_s=timeout_s
    )


def registry(
    folder: Path, guests: dict[str, str], timeout: str = "5s", attempts: int = 1, **options: object
) -> ToolRegistry:
    tools = {}
    for name, source in guests.items():
        (folder / f"{name}.wat").write_text(source)
        tools[name] = tool(
            name,
            type="wasm",
            endpoint=f"{name}.wat",
            risk_level="high",
            runtime={"timeout": timeout, "retry": {"max_attempts": attempts, "backoff": "0.01s"}},
        )
    return ToolRegistry(tools, options=ToolOptions(wasm_module_dir=folder, **options))  # type: ignore[arg-type]


async def test_orloj_reference_guest_runs_without_an_endpoint() -> None:
    manifest = tool("wasm_echo", type="wasm", risk_level="high", runtime={"timeout": "5s"})
    tools = ToolRegistry(
        {"wasm_echo": manifest}, options=ToolOptions(wasm_module=wasm_guests.ORLOJ_REFERENCE)
    )
    result = await tools.invoke(invocation("wasm_echo"))
    assert result.ok, result
    assert result.content == "reference wasm module"
    await tools.aclose()


async def test_the_guest_reads_orloj_request_envelope_on_stdin(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"echo": wasm_guests.upper_echo()})
    result = await tools.invoke(invocation("echo", query='héllo "world"'))
    assert result.ok, result
    request = json.loads(result.content)
    assert request["contract_version"] == "v1"
    assert request["tool"] == "echo" and request["risk_level"] == "high"
    assert json.loads(request["input"]) == {"query": 'héllo "world"'}
    assert request["runtime"] == {
        "entrypoint": "run",
        "max_memory_bytes": 64 * 1024 * 1024,
        "fuel": 0,
        "enable_wasi": True,
    }


async def test_a_trap_fails_the_call_naming_it(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"trap": wasm_guests.TRAP})
    result = await tools.invoke(invocation("trap"))
    assert not result.ok
    assert result.content == "tool trap failed (wasm trap)"
    assert result.error.startswith("wasm trap:") and "unreachable" in result.error


async def test_an_endless_guest_is_interrupted_at_its_timeout(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"spin": wasm_guests.LOOP}, timeout="0.5s", attempts=2)
    # The guest never ends by itself: the call returning at all is the interrupt working (the
    # deadline only keeps a broken interrupt from hanging the suite).
    result = await asyncio.wait_for(tools.invoke(invocation("spin")), scaled(120))
    assert not result.ok
    assert result.content.startswith("tool spin timed out")
    assert "timeout" in result.error


async def test_a_cancelled_call_stops_its_guest(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"spin": wasm_guests.LOOP}, timeout="60s")
    call = asyncio.create_task(tools.invoke(invocation("spin", timeout_s=60)))
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The worker thread ends too: a new call is not queued behind a spinning guest.
    tools2 = registry(
        tmp_path,
        {"echo": wasm_guests.fixed('{"contract_version":"v1","status":"ok","output":"x"}')},
    )
    assert (await tools2.invoke(invocation("echo"))).content == "x"


async def test_fuel_bounds_the_instructions(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"spin": wasm_guests.LOOP}, timeout="30s", wasm_fuel=100_000)
    result = await tools.invoke(invocation("spin", timeout_s=30))
    assert not result.ok and "out of fuel" in result.error


async def test_memory_is_capped(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"grow": wasm_guests.GROW}, wasm_max_memory_mb=16)
    result = await tools.invoke(invocation("grow"))
    assert not result.ok and result.error.startswith("wasm trap:")


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ("", "wasm contract: empty module response"),
        ("not json", "wasm contract: invalid module response JSON"),
        ('{"status":"ok","output":"x"}', "wasm contract: missing response contract_version"),
        ('{"contract_version":"v2","status":"ok"}', "wasm contract: unsupported contract_version"),
        ('{"contract_version":"v1","status":"done"}', "wasm contract: unsupported status 'done'"),
    ],
)
async def test_a_bad_response_fails_with_its_reason(
    tmp_path: Path, stdout: str, reason: str
) -> None:
    tools = registry(tmp_path, {"bad": wasm_guests.fixed(stdout)})
    result = await tools.invoke(invocation("bad"))
    assert not result.ok
    assert result.content == "tool bad returned an invalid response"
    assert result.error.startswith(reason), result.error


@pytest.mark.parametrize(("retryable", "runs"), [(True, 2), (False, 1)])
async def test_an_error_response_is_retried_when_the_guest_says_so(
    tmp_path: Path, retryable: bool, runs: int
) -> None:
    tools = registry(
        tmp_path, {"err": wasm_guests.fixed(wasm_guests.error_response(retryable))}, attempts=2
    )
    result = await tools.invoke(invocation("err"))
    assert not result.ok
    assert result.content == "tool err failed (rate_limited): try later"
    assert result.error == "error: rate_limited (upstream quota): try later"


async def test_a_denied_response_is_not_retried(tmp_path: Path) -> None:
    denied = json.dumps(
        {"contract_version": "v1", "status": "denied", "error": {"code": "forbidden_target"}}
    )
    tools = registry(tmp_path, {"deny": wasm_guests.fixed(denied)}, attempts=3)
    result = await tools.invoke(invocation("deny"))
    assert not result.ok
    assert result.content.startswith("the tool deny denied the call (forbidden_target)")


async def test_a_module_without_the_entrypoint_is_not_available(tmp_path: Path) -> None:
    tools = registry(tmp_path, {"main": wasm_guests.NO_RUN})
    result = await tools.invoke(invocation("main"))
    assert not result.ok and result.content == "the tool is not available"
    assert "exports no function 'run'" in result.error


async def test_modules_come_only_from_the_operator_folder(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "link.wat").symlink_to(outside / "x.wat")
    manifests = {
        "linked": tool("linked", type="wasm", endpoint="link.wat"),
        "default": tool("default", type="wasm"),
    }
    tools = ToolRegistry(manifests, options=ToolOptions(wasm_module_dir=folder))
    result = await tools.invoke(invocation("linked"))
    assert "outside PODIUM_ACTOR_WASM_MODULE_DIR" in result.error
    result = await tools.invoke(invocation("default"))
    assert "PODIUM_ACTOR_WASM_MODULE, which is not set" in result.error
    unset = ToolRegistry(manifests)
    result = await unset.invoke(invocation("linked"))
    assert "PODIUM_ACTOR_WASM_MODULE_DIR, which is not set" in result.error


async def test_a_wasm_tool_named_like_a_builtin_replaces_it() -> None:
    manifest = tool("web-search", type="wasm", runtime={"timeout": "5s"})
    tools = ToolRegistry(
        {"web-search": manifest}, options=ToolOptions(wasm_module=wasm_guests.ORLOJ_REFERENCE)
    )
    result = await tools.invoke(invocation("web-search"))
    await tools.aclose()
    assert result.ok and result.content == "reference wasm module"


def test_the_operator_settings_reach_the_tools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PODIUM_ACTOR_WASM_MODULE_DIR", str(tmp_path))
    monkeypatch.setenv("PODIUM_ACTOR_WASM_ENTRYPOINT", "_start")
    monkeypatch.setenv("PODIUM_ACTOR_WASM_FUEL", "5000")
    monkeypatch.setenv("PODIUM_ACTOR_GRPC_TOOL_PLAINTEXT", "true")
    options = ToolOptions.from_settings(ActorSettings())
    assert options.wasm_module_dir == tmp_path and options.wasm_module is None
    assert (options.wasm_entrypoint, options.wasm_fuel, options.grpc_plaintext) == (
        "_start",
        5000,
        True,
    )
    assert options.webhook_poll_interval_s == 2.0 and options.wasm_max_memory_mb == 64


async def test_wasm_calls_at_once_are_bounded(tmp_path: Path) -> None:
    echo = wasm_guests.fixed('{"contract_version":"v1","status":"ok","output":"x"}')
    tools = registry(
        tmp_path, {"spin": wasm_guests.LOOP, "echo": echo}, timeout="1s", wasm_workers=1
    )
    options = tools._entries["spin"].executor.options  # type: ignore[attr-defined]
    spinning = asyncio.create_task(tools.invoke(invocation("spin")))
    await wait_until(options.wasm_slots.locked, timeout=30, interval=0.01, message="the slot")
    waiting = await tools.invoke(invocation("echo", timeout_s=0.3))
    assert not waiting.ok and "timed out" in waiting.content
    assert not (await spinning).ok
    assert (await tools.invoke(invocation("echo"))).content == "x"  # the slot is free again
