"""What the operator allows the tool types beyond http and python (from `ActorSettings`):
where wasm modules come from and their limits, and whether gRPC tools may be plaintext."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from actors.settings import ActorSettings


@dataclass(frozen=True)
class ToolOptions:
    wasm_module_dir: Path | None = None
    """The folder a wasm tool's `endpoint` names its module in; None refuses those tools."""
    wasm_module: Path | None = None
    """The module of the wasm tools without an `endpoint` (Orloj's `--tool-wasm-module`)."""
    wasm_entrypoint: str = "run"
    wasm_max_memory_mb: int = 64
    wasm_fuel: int = 0
    """Instructions (wasmtime fuel) a call may run; 0: only the timeout bounds it."""
    wasm_workers: int = 4
    """Wasm calls running at once (each in a thread); the others wait, within their timeout."""
    grpc_plaintext: bool = False
    webhook_poll_interval_s: float = 2.0
    wasm_slots: asyncio.Semaphore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Shared by every registry made with these options: the bound is per actor process.
        object.__setattr__(self, "wasm_slots", asyncio.Semaphore(self.wasm_workers))

    @classmethod
    def from_settings(cls, settings: ActorSettings) -> ToolOptions:
        return cls(
            wasm_module_dir=settings.wasm_module_dir,
            wasm_module=settings.wasm_module,
            wasm_entrypoint=settings.wasm_entrypoint,
            wasm_max_memory_mb=settings.wasm_max_memory_mb,
            wasm_fuel=settings.wasm_fuel,
            wasm_workers=settings.wasm_workers,
            grpc_plaintext=settings.grpc_tool_plaintext,
            webhook_poll_interval_s=settings.webhook_tool_poll_interval_s,
        )

    def wasm_module_for(self, tool: str, endpoint: str | None) -> Path | str:
        """The module file of a wasm tool, or why it may not run (naming the setting)."""
        if endpoint is None:
            if self.wasm_module is None:
                return (
                    f"Tool/{tool}: a wasm tool without an endpoint runs the operator's module, "
                    "PODIUM_ACTOR_WASM_MODULE, which is not set"
                )
            return self.wasm_module
        if self.wasm_module_dir is None:
            return (
                f"Tool/{tool}: wasm modules are read from PODIUM_ACTOR_WASM_MODULE_DIR, "
                "which is not set"
            )
        folder = self.wasm_module_dir.resolve()
        module = (folder / endpoint).resolve()
        if not module.is_relative_to(folder):
            return f"Tool/{tool}: wasm module {endpoint!r} is outside PODIUM_ACTOR_WASM_MODULE_DIR"
        return module
