"""`python` tools: `module:function`, sync (run in a worker thread) or async, arguments as kwargs.

Sync functions run on a bounded pool of their own (`SYNC_WORKERS` threads), never on the loop's
default executor, which name lookups need. A sync function that overruns its timeout is
abandoned, not killed: its thread runs to its end."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from actors.tools._attempts import ToolFailure, run_attempts
from actors.tools.base import ToolInvocation, ToolResult
from podium.core.errors import TransientError

MAX_RESULT_CHARS = 100_000
SYNC_WORKERS = 4

_SYNC_TOOLS = ThreadPoolExecutor(max_workers=SYNC_WORKERS, thread_name_prefix="podium-tool")


def load_function(reference: str) -> Callable[..., Any]:
    """The callable named by `module:function`; raises `ToolFailure` when it cannot be loaded."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ToolFailure(
            "the tool is not available", f"cannot load {reference}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(function):
        raise ToolFailure("the tool is not available", f"{reference} is not callable")
    return function  # type: ignore[no-any-return]


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


class PythonToolExecutor:
    """Implements `ToolExecutor` for one `type: python` tool. A `TransientError` raised by the
    function is retried (per the tool's retry policy); any other exception fails the call."""

    def __init__(
        self,
        *,
        name: str,
        reference: str,
        timeout_s: float,
        max_attempts: int = 1,
        backoff_s: float = 0.5,
    ) -> None:
        self.name = name
        self.reference = reference
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._function: Callable[..., Any] | None = None

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        async def attempt(budget_s: float) -> str:
            if self._function is None:
                self._function = load_function(self.reference)
            function = self._function
            try:
                if inspect.iscoroutinefunction(function):
                    value = await function(**invocation.arguments)
                else:
                    value = await asyncio.get_running_loop().run_in_executor(
                        _SYNC_TOOLS, functools.partial(function, **invocation.arguments)
                    )
            except (TransientError, ToolFailure, TimeoutError):
                raise
            except Exception as exc:
                raise ToolFailure(
                    f"tool {self.name} failed ({type(exc).__name__})",
                    f"{type(exc).__name__}: {exc}",
                ) from exc
            return render(value)[:MAX_RESULT_CHARS]

        return await run_attempts(
            invocation,
            attempt,
            attempt_timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
        )

    async def aclose(self) -> None:
        return None
