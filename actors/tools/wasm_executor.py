"""`wasm` tools: a WebAssembly module run in the actor by wasmtime, under Orloj's host-guest
contract (`runtime/tool_runtime_wasm_*.go`, `examples/resources/tools/wasm-reference`).

The module is the operator's: the tool's `endpoint` names a file (`.wasm`, or `.wat` text) under
`PODIUM_ACTOR_WASM_MODULE_DIR`; a tool without an endpoint runs `PODIUM_ACTOR_WASM_MODULE`
(Orloj's `--tool-wasm-module`). Each call instantiates the module afresh with WASI and calls its
export `PODIUM_ACTOR_WASM_ENTRYPOINT` (default `run`, Orloj's `--invoke run`). The guest reads
the request from stdin, `{"contract_version": "v1", "tool", "namespace", "input" (the arguments
as JSON text), "risk_level", "runtime": {...}}`, and writes its response to stdout,
`{"contract_version": "v1", "status": "ok"|"error"|"denied", "output": "...", "error": {...}}`.

The guest has no files, no environment, no network and no clock beyond WASI's defaults; its
memory is capped (`PODIUM_ACTOR_WASM_MAX_MEMORY_MB`), its instructions optionally
(`PODIUM_ACTOR_WASM_FUEL`), and a call that overruns its timeout is interrupted (an epoch
deadline), also when the call is cancelled. A trap fails the call, naming it."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import wasmtime

from actors.tools import contract
from actors.tools._attempts import RetryableToolFailure, ToolFailure, run_runtime_attempts
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.options import ToolOptions
from manifests.models import Tool

MAX_OUTPUT_BYTES = 4 * 1024 * 1024


class WasmToolExecutor:
    """Implements `ToolExecutor` for one `type: wasm` tool."""

    def __init__(self, manifest: Tool, module: Path, options: ToolOptions) -> None:
        self.manifest = manifest
        self.name = manifest.metadata.name
        self.module = module
        self.options = options

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        runtime = self.manifest.spec.runtime

        async def attempt(budget_s: float) -> str:
            engine = _engine(self.options.wasm_fuel > 0)
            done = threading.Event()
            loop = asyncio.get_running_loop()
            # The deadline interrupts the guest; a cancelled call interrupts it at once.
            timer = loop.call_later(budget_s, engine.increment_epoch)
            try:
                async with self.options.wasm_slots:
                    stdout = await asyncio.to_thread(self._run, engine, invocation, done)
            finally:
                timer.cancel()
                if not done.is_set():
                    engine.increment_epoch()
            return _output(self.name, stdout)

        return await run_runtime_attempts(invocation, attempt, runtime)

    async def aclose(self) -> None:
        return None

    def _request(self, invocation: ToolInvocation) -> bytes:
        options = self.options
        request = {
            "contract_version": contract.CONTRACT_VERSION,
            "namespace": self.manifest.metadata.namespace or "",
            "tool": self.name,
            "input": json.dumps(invocation.arguments, separators=(",", ":")),
            "risk_level": self.manifest.spec.risk_level,
            "runtime": {
                "entrypoint": options.wasm_entrypoint,
                "max_memory_bytes": options.wasm_max_memory_mb * 1024 * 1024,
                "fuel": options.wasm_fuel,
                "enable_wasi": True,
            },
        }
        return json.dumps({k: v for k, v in request.items() if v != ""}).encode()

    def _run(
        self, engine: wasmtime.Engine, invocation: ToolInvocation, done: threading.Event
    ) -> bytes:
        """One instantiation and call, in a worker thread; the guest's stdout."""
        try:
            return self._run_guest(engine, invocation)
        finally:
            done.set()

    def _run_guest(self, engine: wasmtime.Engine, invocation: ToolInvocation) -> bytes:
        options = self.options
        try:
            source = self.module.read_bytes()
            module = wasmtime.Module(engine, source)
        except (OSError, wasmtime.WasmtimeError) as exc:
            raise ToolFailure(
                "the tool is not available", f"wasm module {self.module}: {exc}"
            ) from exc
        out = _Capped(MAX_OUTPUT_BYTES)
        with tempfile.TemporaryDirectory(prefix="podium-wasm-") as folder:
            stdin = Path(folder) / "stdin.json"
            stdin.write_bytes(self._request(invocation))
            wasi = wasmtime.WasiConfig()
            wasi.argv = [self.name]
            wasi.stdin_file = str(stdin)
            wasi.stdout_custom = out.write
            wasi.stderr_custom = _Capped(0).write
            store = wasmtime.Store(engine)
            store.set_wasi(wasi)
            store.set_limits(memory_size=options.wasm_max_memory_mb * 1024 * 1024)
            store.set_epoch_deadline(1)
            if options.wasm_fuel > 0:
                store.set_fuel(options.wasm_fuel)
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            try:
                instance = linker.instantiate(store, module)
                entry = instance.exports(store).get(options.wasm_entrypoint)
                if not isinstance(entry, wasmtime.Func):
                    raise ToolFailure(
                        "the tool is not available",
                        f"wasm module {self.module.name} exports no function "
                        f"{options.wasm_entrypoint!r}",
                    )
                entry(store)
            except wasmtime.ExitTrap as exc:
                if exc.code != 0:
                    raise ToolFailure(
                        f"tool {self.name} failed (exit status {exc.code})",
                        f"wasm: the guest exited with status {exc.code}",
                    ) from exc
            except wasmtime.Trap as exc:
                raise _trap(self.name, exc) from exc
            except wasmtime.WasmtimeError as exc:
                raise ToolFailure(
                    f"tool {self.name} failed (wasm)", f"wasm: {str(exc).splitlines()[0]}"
                ) from exc
        if out.cut:
            raise ToolFailure(
                f"tool {self.name} answered too much", f"wasm: stdout over {MAX_OUTPUT_BYTES} bytes"
            )
        return bytes(out.data)


class _Capped:
    """A WASI stream that keeps at most `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.cut = False

    def write(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        self.data += chunk[: max(0, room)]
        self.cut = self.cut or len(chunk) > room


def _engine(fuel: bool) -> wasmtime.Engine:
    # One engine per call: its epoch interrupts this call only.
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    return wasmtime.Engine(config)


def _trap(tool: str, exc: wasmtime.Trap) -> ToolFailure | RetryableToolFailure:
    # The last line is wasmtime's cause (`wasm trap: wasm `unreachable` instruction executed`).
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[-1].removeprefix("wasm trap: ") if lines else "trap"
    code = exc.trap_code
    if code == wasmtime.TrapCode.INTERRUPT:
        return RetryableToolFailure(
            f"tool {tool} timed out", "wasm: interrupted at its deadline (timeout)"
        )
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return ToolFailure(
            f"tool {tool} failed (exceeded its limits)",
            "wasm trap: out of fuel (PODIUM_ACTOR_WASM_FUEL)",
        )
    return ToolFailure(f"tool {tool} failed (wasm trap)", f"wasm trap: {message}")


def _output(tool: str, stdout: bytes) -> str:
    """The result of the guest's response (Orloj's `DecodeWASMToolModuleResponse`)."""
    text = stdout.decode("utf-8", errors="replace").strip()
    bad = f"tool {tool} returned an invalid response"
    if not text:
        raise ToolFailure(bad, "wasm contract: empty module response")
    try:
        response: Any = json.loads(text)
    except ValueError as exc:
        raise ToolFailure(bad, f"wasm contract: invalid module response JSON: {exc}") from exc
    if not isinstance(response, dict):
        raise ToolFailure(bad, "wasm contract: the response is not a JSON object")
    version = str(response.get("contract_version") or "").strip().lower()
    if version != contract.CONTRACT_VERSION:
        raise ToolFailure(
            bad,
            "wasm contract: missing response contract_version"
            if not version
            else f"wasm contract: unsupported contract_version {version[:20]!r}",
        )
    status = str(response.get("status") or "").strip().lower()
    if status == "ok":
        output = response.get("output", "")
        if not isinstance(output, str):
            raise ToolFailure(bad, "wasm contract: output must be a string")
        return output.strip()
    if status not in ("error", "denied"):
        raise ToolFailure(bad, f"wasm contract: unsupported status {status[:20]!r}")
    error = response.get("error")
    if status == "error" and not isinstance(error, dict):
        # Orloj's default for an error without its envelope: a backend failure, retryable.
        error = {
            "code": "execution_failed",
            "message": "wasm module execution failed",
            "retryable": True,
        }
    raise contract.failure(tool, status, error)
