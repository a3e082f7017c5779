"""Where `python` tools run: out of the actor process, one child process per call.

A manifest names code (`module:function`); it runs only when the operator allowed its module
(`PODIUM_ACTOR_PYTHON_TOOL_MODULES`: a package allows its submodules, and the function must be
defined in an allowed module, not merely imported there). Each call is a fresh interpreter
(`actors/tools/_python_worker.py`) with an address-space limit (RLIMIT_AS), a CPU limit
(RLIMIT_CPU), no core files, and an environment without the services' settings or keys (only
PATH, HOME, TMPDIR and the locale). A call that overruns its timeout, or is cancelled, is killed
with its whole process group. At most `workers` calls run at once; the others wait (within their
timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.settings import ActorSettings
from actors.tools._attempts import ToolFailure
from podium.core.errors import TransientError

MODULES_SETTING = "PODIUM_ACTOR_PYTHON_TOOL_MODULES"
MAX_RESULT_CHARS = 100_000
_MAX_ANSWER_BYTES = 4 * MAX_RESULT_CHARS + 16_384
_WORKER = Path(__file__).with_name("_python_worker.py")
_ENVIRONMENT = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


def module_allowed(module: str, allowed: Sequence[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in allowed)


class PythonSandbox:
    """The operator's rules for `python` tools, and the bound on calls running at once."""

    def __init__(
        self,
        *,
        allowed_modules: Sequence[str] = (),
        memory_mb: int = 1024,
        cpu_s: int = 30,
        workers: int = 4,
    ) -> None:
        self.allowed_modules = tuple(allowed_modules)
        self.memory_mb = memory_mb
        self.cpu_s = cpu_s
        self.workers = workers
        self._slots = asyncio.Semaphore(workers)

    @classmethod
    def from_settings(cls, settings: ActorSettings) -> PythonSandbox:
        return cls(
            allowed_modules=settings.python_tool_modules,
            memory_mb=settings.python_tool_memory_mb,
            cpu_s=settings.python_tool_cpu_s,
            workers=settings.python_tool_workers,
        )

    def refusal(self, tool: str, reference: str) -> str | None:
        """Why the tool may not run (naming the setting), or None when its module is allowed."""
        module = reference.partition(":")[0]
        if module_allowed(module, self.allowed_modules):
            return None
        listed = ", ".join(self.allowed_modules) or "none"
        return (
            f"Tool/{tool}: python module {module!r} is not allowed; the operator lists the "
            f"modules python tools may use in {MODULES_SETTING} (allowed now: {listed})"
        )

    async def call(self, tool: str, reference: str, arguments: Mapping[str, Any]) -> str:
        """Run `reference(**arguments)` in a child process; its rendered result, or raises
        `ToolFailure` / `TransientError` (a `TransientError` raised by the function)."""
        refused = self.refusal(tool, reference)
        if refused is not None:
            raise ToolFailure("the tool is not available", refused)
        request = json.dumps(
            {
                "reference": reference,
                "arguments": dict(arguments),
                "allowed": list(self.allowed_modules),
                "path": [entry or os.getcwd() for entry in sys.path],
                "memory_bytes": self.memory_mb * 1024 * 1024,
                "cpu_s": self.cpu_s,
                "max_chars": MAX_RESULT_CHARS,
            },
            default=str,
        ).encode()
        async with self._slots:
            answer, returncode = await _run_child(request)
        return _outcome(tool, reference, answer, returncode)


async def _run_child(request: bytes) -> tuple[bytes, int | None]:
    env = {name: os.environ[name] for name in _ENVIRONMENT if name in os.environ}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(_WORKER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(request)
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        process.stdin.close()
        answer = bytearray()
        while len(answer) < _MAX_ANSWER_BYTES:
            chunk = await process.stdout.read(_MAX_ANSWER_BYTES - len(answer))
            if not chunk:
                break
            answer += chunk
        if len(answer) >= _MAX_ANSWER_BYTES:
            return bytes(answer), None
        returncode = await process.wait()
        return bytes(answer), returncode
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())


def _outcome(tool: str, reference: str, answer: bytes, returncode: int | None) -> str:
    try:
        result = json.loads(answer.decode("utf-8", errors="replace").splitlines()[0])
        kind = str(result["kind"])
    except (ValueError, IndexError, KeyError, TypeError):
        if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            raise ToolFailure(
                f"tool {tool} failed (exceeded its limits)",
                f"{reference}: killed by signal {-(returncode or 0)} (CPU or memory limit)",
            ) from None
        raise ToolFailure(
            f"tool {tool} failed (crashed)", f"{reference}: no result, exit status {returncode}"
        ) from None
    if kind == "ok":
        return str(result.get("content", ""))
    message = str(result.get("message", ""))
    error_type = str(result.get("type", "Error"))
    if kind == "refused":
        raise ToolFailure("the tool is not available", f"{reference}: {message}")
    if kind == "load":
        raise ToolFailure(
            "the tool is not available", f"cannot load {reference}: {error_type}: {message}"
        )
    if kind == "transient":
        raise TransientError(f"{error_type}: {message}")
    raise ToolFailure(f"tool {tool} failed ({error_type})", f"{error_type}: {message}")
