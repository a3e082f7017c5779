"""`ToolRegistry`: every tool an actor can call, from the catalog's `Tool` manifests and the
built-ins (`manifests.builtins.BUILTIN_TOOLS`), each with its spec for the model and its executor.

A `Tool` manifest named like a built-in (`read-url`, `web-search`) without an `endpoint` configures
the built-in (`allow_private_networks`, `runtime`, `description`); with an `endpoint` it replaces
the built-in. An http tool's `auth` is opened from the catalog's Secrets with the actor's
sealing key (`actors.tools.credentials`). Arguments are validated against the tool's schema
before any executor runs; a tool's failure never raises: it is a `ToolResult(ok=False)` whose
`content` is safe for the model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.providers.base import ToolSpec
from actors.tools import read_url, web_search
from actors.tools.base import ToolExecutor, ToolInvocation, ToolResult
from actors.tools.credentials import OAuth2Tokens, ToolCredentials
from actors.tools.external_executor import ContractToolExecutor
from actors.tools.grpc_executor import GrpcToolExecutor
from actors.tools.http_executor import HttpToolExecutor
from actors.tools.options import ToolOptions
from actors.tools.python_executor import PythonToolExecutor
from actors.tools.sandbox import PythonSandbox
from actors.tools.schema import ArgumentValidator
from actors.tools.wasm_executor import WasmToolExecutor
from actors.tools.web_search import SearchBackend
from manifests.builtins import BUILTIN_TOOLS
from manifests.catalog import Catalog
from manifests.models import Secret, Tool
from podium.core.errors import PermanentError

log = logging.getLogger(__name__)

GRACE_S = 1.0
"""Extra time the registry's outer timeout gives an executor over the invocation's `timeout_s`."""


class UnknownToolError(PermanentError):
    """A name that is neither a `Tool` manifest nor a built-in."""


class UnsupportedToolError(PermanentError):
    """A `Tool` manifest this runtime cannot execute: type `mcp`, or a `python` tool whose module
    the operator did not allow (`PODIUM_ACTOR_PYTHON_TOOL_MODULES`)."""


class _Entry:
    __slots__ = ("executor", "spec", "timeout_s", "validator")

    def __init__(
        self, spec: ToolSpec, validator: ArgumentValidator, executor: ToolExecutor, timeout_s: float
    ) -> None:
        self.spec = spec
        self.validator = validator
        self.executor = executor
        self.timeout_s = timeout_s


class ToolRegistry:
    """Implements `ToolExecutor` over every tool of a catalog, dispatching on the tool's name."""

    def __init__(
        self,
        tools: Mapping[str, Tool] | None = None,
        *,
        search_backend: SearchBackend | None = None,
        builtins: frozenset[str] = BUILTIN_TOOLS,
        python: PythonSandbox | None = None,
        secrets: Mapping[str, Secret] | None = None,
        sealing_key: X25519PrivateKey | None = None,
        tokens: OAuth2Tokens | None = None,
        options: ToolOptions | None = None,
    ) -> None:
        sandbox = python or PythonSandbox()
        options = options or ToolOptions()
        opener = _Credentials(secrets or {}, sealing_key, tokens or OAuth2Tokens())
        self._entries: dict[str, _Entry] = {}
        manifests = dict(tools or {})
        for name in sorted(builtins):
            manifest = manifests.get(name)
            # Only an http Tool without an endpoint configures the built-in; a wasm one (which
            # runs the operator's module) replaces it.
            if manifest is not None and (manifest.spec.endpoint or manifest.spec.type != "http"):
                continue
            self._entries[name] = _builtin_entry(name, manifest, search_backend)
        self._unsupported: dict[str, str] = {}
        for name, manifest in sorted(manifests.items()):
            if name in self._entries:
                continue
            if manifest.spec.type == "mcp":
                self._unsupported[name] = (
                    f"Tool/{name}: type mcp is not supported by this runtime yet"
                )
                continue
            refused = (
                sandbox.refusal(name, manifest.spec.endpoint or "")
                if manifest.spec.type == "python"
                else None
            )
            module = (
                options.wasm_module_for(name, manifest.spec.endpoint)
                if manifest.spec.type == "wasm"
                else None
            )
            if isinstance(module, str):
                refused, module = module, None
            if refused is not None:
                log.warning("%s", refused)
                self._unsupported[name] = refused
                continue
            self._entries[name] = _manifest_entry(name, manifest, sandbox, opener, options, module)

    @classmethod
    def from_catalog(
        cls,
        catalog: Catalog,
        *,
        search_backend: SearchBackend | None = None,
        python: PythonSandbox | None = None,
        sealing_key: X25519PrivateKey | None = None,
        tokens: OAuth2Tokens | None = None,
        options: ToolOptions | None = None,
    ) -> ToolRegistry:
        """The catalog's tools; `sealing_key` opens the Secrets their `auth` names, and `tokens`
        keeps OAuth2 tokens across the registries of successive catalogs."""
        return cls(
            catalog.tools,
            search_backend=search_backend,
            python=python,
            secrets=catalog.secrets,
            sealing_key=sealing_key,
            tokens=tokens,
            options=options,
        )

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def spec_for(self, name: str) -> ToolSpec:
        """The tool as offered to the model. Raises `UnknownToolError` / `UnsupportedToolError`."""
        return self._entry(name).spec

    def timeout_for(self, name: str) -> float:
        """The tool's `runtime.timeout` (seconds); the runtime may use it for `ToolInvocation`."""
        return self._entry(name).timeout_s

    def validate(self, name: str, arguments: Mapping[str, Any]) -> list[str]:
        """Schema problems of these arguments (empty when valid), without running the tool."""
        return self._entry(name).validator.problems(arguments)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        name = invocation.tool
        if name in self._unsupported:
            return ToolResult(
                ok=False, content=f"tool {name} is not available", error=self._unsupported[name]
            )
        entry = self._entries.get(name)
        if entry is None:
            return ToolResult(
                ok=False, content=f"there is no tool named {name}", error=f"unknown tool {name!r}"
            )
        problems = entry.validator.problems(invocation.arguments)
        if problems:
            return ToolResult(
                ok=False,
                content=f"invalid arguments for tool {name}: " + "; ".join(problems),
                error="schema: " + "; ".join(problems),
            )
        try:
            async with asyncio.timeout(invocation.timeout_s + GRACE_S):
                return await entry.executor.invoke(invocation)
        except TimeoutError:
            return ToolResult(
                ok=False,
                content=f"tool {name} timed out",
                error=f"no result within {invocation.timeout_s:.1f}s",
            )
        except Exception as exc:
            log.warning("tool %s raised %s", name, type(exc).__name__)
            return ToolResult(
                ok=False, content=f"tool {name} failed", error=f"{type(exc).__name__}: {exc}"
            )

    async def aclose(self) -> None:
        for entry in self._entries.values():
            await entry.executor.aclose()

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        if name in self._unsupported:
            raise UnsupportedToolError(self._unsupported[name])
        known = ", ".join(self.names()) or "none"
        raise UnknownToolError(f"tool {name!r} is not defined (known: {known})")


def _builtin_entry(
    name: str, manifest: Tool | None, search_backend: SearchBackend | None
) -> _Entry:
    executor: ToolExecutor
    if name == read_url.NAME:
        description, schema = read_url.DESCRIPTION, read_url.INPUT_SCHEMA
        timeout = manifest.spec.runtime.timeout_s if manifest else read_url.DEFAULT_TIMEOUT_S
        executor = read_url.ReadUrlExecutor(
            allow_private_networks=bool(manifest and manifest.spec.allow_private_networks),
            timeout_s=timeout,
            max_attempts=manifest.spec.runtime.retry.max_attempts if manifest else 1,
            backoff_s=manifest.spec.runtime.retry.backoff if manifest else 0.5,
            max_backoff_s=manifest.spec.runtime.retry.max_backoff_s if manifest else None,
            jitter=manifest.spec.runtime.retry.jitter if manifest else "full",
        )
    elif name == web_search.NAME:
        description, schema = web_search.DESCRIPTION, web_search.INPUT_SCHEMA
        timeout = manifest.spec.runtime.timeout_s if manifest else 30.0
        executor = web_search.WebSearchExecutor(search_backend)
    else:
        raise UnsupportedToolError(f"built-in tool {name!r} has no implementation")
    if manifest is not None and manifest.spec.description:
        description = manifest.spec.description
    validator = ArgumentValidator(name, schema)
    spec = ToolSpec(name=name, description=description, parameters=validator.schema)
    return _Entry(spec, validator, executor, timeout)


class _Credentials:
    """Makes the `ToolCredentials` of a tool with `auth` (None without)."""

    def __init__(
        self,
        secrets: Mapping[str, Secret],
        sealing_key: X25519PrivateKey | None,
        tokens: OAuth2Tokens,
    ) -> None:
        self._secrets = secrets
        self._sealing_key = sealing_key
        self._tokens = tokens

    def __call__(self, name: str, manifest: Tool) -> ToolCredentials | None:
        auth = manifest.spec.auth
        if auth is None:
            return None
        return ToolCredentials(
            tool=name,
            auth=auth,
            secret=self._secrets.get(auth.secret_name),
            sealing_key=self._sealing_key,
            tokens=self._tokens,
        )


def _manifest_entry(
    name: str,
    manifest: Tool,
    sandbox: PythonSandbox,
    credentials: _Credentials,
    options: ToolOptions,
    module: Path | None,
) -> _Entry:
    spec = manifest.spec
    runtime = spec.runtime
    executor: ToolExecutor
    if spec.type == "http":
        executor = HttpToolExecutor(
            name=name,
            endpoint=spec.endpoint or "",
            timeout_s=runtime.timeout_s,
            max_attempts=runtime.retry.max_attempts,
            backoff_s=runtime.retry.backoff,
            max_backoff_s=runtime.retry.max_backoff_s,
            jitter=runtime.retry.jitter,
            credentials=credentials(name, manifest),
        )
    elif spec.type in ("external", "webhook-callback"):
        executor = ContractToolExecutor(
            manifest,
            credentials=credentials(name, manifest),
            poll_interval_s=options.webhook_poll_interval_s,
        )
    elif spec.type == "grpc":
        executor = GrpcToolExecutor(
            manifest, plaintext=options.grpc_plaintext, credentials=credentials(name, manifest)
        )
    elif spec.type == "wasm" and module is not None:
        executor = WasmToolExecutor(manifest, module, options)
    else:
        executor = PythonToolExecutor(
            name=name,
            reference=spec.endpoint or "",
            timeout_s=runtime.timeout_s,
            sandbox=sandbox,
            max_attempts=runtime.retry.max_attempts,
            backoff_s=runtime.retry.backoff,
            max_backoff_s=runtime.retry.max_backoff_s,
            jitter=runtime.retry.jitter,
        )
    validator = ArgumentValidator(name, spec.input_schema)
    tool_spec = ToolSpec(name=name, description=spec.description, parameters=validator.schema)
    return _Entry(tool_spec, validator, executor, runtime.timeout_s)
