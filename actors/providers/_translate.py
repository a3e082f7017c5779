"""Shared helpers of the SDK providers: options, arguments, SDK error translation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from actors.providers.errors import PermanentModelError, TransientModelError, error_for_status


def check_options(
    options: Mapping[str, Any], supported: frozenset[str], *, where: str, provider: str
) -> dict[str, Any]:
    unknown = sorted(set(options) - supported)
    if unknown:
        raise PermanentModelError(
            f"{where}: options.{unknown[0]} is not supported by the {provider} provider; "
            f"supported: {', '.join(sorted(supported))}",
            provider=provider,
        )
    return dict(options)


NUMERIC_OPTIONS = frozenset({"temperature", "top_p", "top_k", "seed", "max_tokens", "num_ctx"})
"""Options that are numbers; Orloj writes every option as a string (`max_tokens: "1024"`)."""


def number(value: Any) -> Any:
    """A numeric option as a number: `"0.2"` -> 0.2, `"1024"` -> 1024; anything else as it is
    (the vendor names what it refuses)."""
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
    return value


def request_params(
    params: dict[str, Any],
    options: Mapping[str, Any],
    request_options: frozenset[str],
    timeout_s: float,
) -> dict[str, Any]:
    """Add an endpoint's `options` (the provider's request options, `extra_headers`,
    `extra_body`) and the call's timeout to the SDK parameters."""
    for option in request_options & options.keys():
        params[option] = number(options[option]) if option in NUMERIC_OPTIONS else options[option]
    for passthrough in ("extra_headers", "extra_body"):
        if passthrough in options:
            params[passthrough] = dict(options[passthrough])
    params["timeout"] = timeout_s
    return params


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """A tool call's JSON arguments; invalid JSON is kept under `_invalid_json` so that schema
    validation rejects it and the model is told, instead of the step failing."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_invalid_json": raw}
    if isinstance(value, dict):
        return value
    return {"_invalid_json": raw}


_WIRE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def wire_name(name: str) -> str:
    """A tool's name as the vendors accept it (`^[A-Za-z0-9_-]+$`): `memory.read` is sent as
    `memory_read`."""
    return _WIRE_UNSAFE.sub("_", name)


def from_wire(name: str, tools: Iterable[Any]) -> str:
    """The name of the offered tool (`tools`: ToolSpecs) that `name` came back as."""
    for tool in tools:
        if wire_name(tool.name) == name:
            return str(tool.name)
    return name


def object_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    if not parameters:
        return {"type": "object", "properties": {}}
    return dict(parameters)


def translate_sdk_error(
    provider: str,
    exc: Exception,
    *,
    status_error: type[Exception],
    timeout_error: type[Exception],
    connection_error: type[Exception],
) -> TransientModelError | PermanentModelError:
    """An openai/anthropic SDK exception as a Podium error. Both SDKs share the same shapes."""
    if isinstance(exc, status_error):
        response: httpx.Response = exc.response  # type: ignore[attr-defined]
        status: int = exc.status_code  # type: ignore[attr-defined]
        message = str(getattr(exc, "message", "") or exc)
        return error_for_status(provider, status, message, dict(response.headers))
    if isinstance(exc, timeout_error):
        return TransientModelError(f"{provider}: request timed out", provider=provider)
    if isinstance(exc, connection_error):
        return TransientModelError(f"{provider}: connection failed: {exc}", provider=provider)
    if isinstance(exc, httpx.TimeoutException):
        return TransientModelError(f"{provider}: request timed out", provider=provider)
    if isinstance(exc, httpx.TransportError):
        return TransientModelError(f"{provider}: connection failed: {exc}", provider=provider)
    return PermanentModelError(f"{provider}: {type(exc).__name__}: {exc}", provider=provider)
