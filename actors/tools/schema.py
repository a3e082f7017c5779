"""Tool input validation with JSON Schema, before any call.

Unknown fields are rejected: an object schema that lists `properties` and says nothing about
`additionalProperties` (nor `patternProperties` / `unevaluatedProperties`) is closed, at every
level reached through `properties`, `items` and `$defs`. A schema without `properties` (the
default `{type: object}`) accepts any object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from podium.core.errors import PermanentError

_OPEN_KEYS = ("additionalProperties", "patternProperties", "unevaluatedProperties")


class ToolSchemaError(PermanentError):
    """A tool's `input_schema` is not a valid JSON Schema."""


def closed_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `schema` where object schemas listing `properties` reject unknown fields."""
    result: dict[str, Any] = dict(schema)
    properties = result.get("properties")
    if isinstance(properties, Mapping):
        result["properties"] = {
            name: closed_schema(sub) if isinstance(sub, Mapping) else sub
            for name, sub in properties.items()
        }
        if not any(key in result for key in _OPEN_KEYS):
            result["additionalProperties"] = False
    items = result.get("items")
    if isinstance(items, Mapping):
        result["items"] = closed_schema(items)
    for defs_key in ("$defs", "definitions"):
        defs = result.get(defs_key)
        if isinstance(defs, Mapping):
            result[defs_key] = {
                name: closed_schema(sub) if isinstance(sub, Mapping) else sub
                for name, sub in defs.items()
            }
    return result


class ArgumentValidator:
    """Checks a tool's arguments against its (closed) input schema."""

    def __init__(self, tool: str, schema: Mapping[str, Any]) -> None:
        self.tool = tool
        self.schema = closed_schema(schema)
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ToolSchemaError(
                f"Tool/{tool}: input_schema is not a valid JSON Schema: {exc.message}"
            ) from exc
        self._validator = Draft202012Validator(self.schema)

    def problems(self, arguments: Mapping[str, Any]) -> list[str]:
        """Readable problems, `path: message`, empty when the arguments are valid."""
        found: list[str] = []
        for error in sorted(
            self._validator.iter_errors(dict(arguments)), key=lambda e: [str(p) for p in e.path]
        ):
            where = "/".join(str(part) for part in error.absolute_path) or "(arguments)"
            message = error.message
            if len(message) > 200:
                message = message[:200] + "..."
            found.append(f"{where}: {message}")
        return found
