"""The child process of one `python` tool call (run by `actors.tools.sandbox`).

Standard library only, so that it starts fast. Reads one JSON request on stdin, sets its resource
limits first, imports the function (only from an allowed module, and only a function defined
there), calls it, and writes one JSON line to the original stdout; whatever the tool prints goes
to stderr."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import resource
import sys
from typing import Any


def _allowed(module: str, allowed: list[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in allowed)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _transient(exc: BaseException) -> bool:
    return any(
        cls.__name__ == "TransientError" and cls.__module__ == "podium.core.errors"
        for cls in type(exc).__mro__
    )


def _run(request: dict[str, Any]) -> dict[str, Any]:
    allowed: list[str] = request["allowed"]
    module_name, _, attribute = str(request["reference"]).partition(":")
    if not _allowed(module_name, allowed):
        return {"kind": "refused", "message": f"module {module_name} is not allowed"}
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        return {"kind": "load", "type": type(exc).__name__, "message": str(exc)}
    defined_in = getattr(function, "__module__", None)
    if not callable(function) or not isinstance(defined_in, str):
        return {"kind": "refused", "message": f"{request['reference']} is not a function"}
    if not _allowed(defined_in, allowed):
        return {
            "kind": "refused",
            "message": f"{request['reference']} is defined in {defined_in}, not an allowed module",
        }
    try:
        value = function(**request["arguments"])
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
    except MemoryError:
        return {"kind": "error", "type": "MemoryError", "message": "out of memory"}
    except Exception as exc:
        kind = "transient" if _transient(exc) else "error"
        return {"kind": kind, "type": type(exc).__name__, "message": str(exc)[:2000]}
    return {"kind": "ok", "content": _render(value)[: int(request["max_chars"])]}


async def _awaited(value: Any) -> Any:
    return await value


def main() -> None:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    request = json.loads(sys.stdin.read())
    memory = int(request["memory_bytes"])
    cpu = int(request["cpu_s"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.path[:] = [str(entry) for entry in request["path"]]
    try:
        answer = _run(request)
    except MemoryError:
        answer = {"kind": "error", "type": "MemoryError", "message": "out of memory"}
    out.write(json.dumps(answer, ensure_ascii=False) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
