"""Turning pydantic's validation errors into located, readable `ManifestError`s."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from manifests._yaml import line_of
from manifests.errors import ManifestError, suggest


def located_errors(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    file: str,
    doc_line: int,
    node: Any,
    value: Any,
    kind: str,
    name: str | None,
) -> list[ManifestError]:
    errors: list[ManifestError] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        path = _path(value, error["loc"], error["type"])
        dotted = _dotted(path)
        if dotted in seen:
            continue
        seen.add(dotted)
        line = line_of(node, path, doc_line) if node is not None else doc_line
        errors.append(
            ManifestError(
                file=file,
                line=line,
                kind=kind,
                name=name,
                message=_message(error, path, dotted, model),
            )
        )
    return errors


def _path(value: Any, loc: tuple[int | str, ...], error_type: str) -> list[str | int]:
    """The loc without pydantic's union tags: only the parts that exist in the document."""
    path: list[str | int] = []
    current = value
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif last and error_type in ("missing", "extra_forbidden") and isinstance(part, str):
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and error_type == "missing":
            # a missing key of a missing parent
            path.append(part)
            current = {}
    return path


def _dotted(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _message(
    error: ErrorDetails, path: list[str | int], dotted: str, model: type[BaseModel]
) -> str:
    kind = error["type"]
    msg = error["msg"]
    if kind == "extra_forbidden":
        field = str(path[-1]) if path else "?"
        allowed = _fields_at(model, path[:-1])
        where = _dotted(path[:-1])
        place = f" in {where}" if where else ""
        hint = suggest(field, allowed)
        if not hint and allowed:
            hint = f"; allowed: {', '.join(sorted(allowed))}"
        return f"unknown field {field!r}{place}{hint}"
    if kind == "missing":
        return f"missing required field {dotted!r}"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        got = error.get("input")
        hint = suggest(got, expected) if isinstance(got, str) else ""
        return f"{dotted}: {got!r} is not one of {', '.join(expected)}{hint}"
    bounds = {
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be more than {gt}",
        "less_than_equal": "must be at most {le}",
        "too_short": "must have at least {min_length} item(s)",
    }
    if kind in bounds:
        try:
            return f"{dotted}: " + bounds[kind].format(**error.get("ctx", {}))
        except KeyError:
            pass
    if kind in ("value_error", "assertion_error"):
        msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    elif kind == "string_pattern_mismatch" and dotted.endswith("name"):
        msg = (
            "must start with a letter or digit and contain only letters, digits, '.', '_' "
            "and '-' (at most 200 characters)"
        )
    return f"{dotted}: {msg}" if dotted else msg


def _fields_at(model: type[BaseModel], path: list[str | int]) -> list[str]:
    """The field names (as written in YAML) accepted at `path` of `model`."""
    types_here: list[Any] = [model]
    for part in path:
        types_here = [t for current in types_here for t in _step(current, part)]
    names: set[str] = set()
    for candidate in types_here:
        for cls in _models_in(candidate):
            for field_name, field in cls.model_fields.items():
                names.add(field.alias or field_name)
    return sorted(names)


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [u for arg in typing.get_args(tp) for u in _unwrap(arg)]
    return [tp]


def _step(tp: Any, part: str | int) -> list[Any]:
    out: list[Any] = []
    for t in _unwrap(tp):
        origin = typing.get_origin(t)
        if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
            for field_name, field in t.model_fields.items():
                if part in (field_name, field.alias):
                    out.append(field.annotation)
        elif origin is list and isinstance(part, int):
            out.append(typing.get_args(t)[0])
        elif origin is dict and isinstance(part, str):
            out.append(typing.get_args(t)[1])
    return out


def _models_in(tp: Any) -> list[type[BaseModel]]:
    return [t for t in _unwrap(tp) if isinstance(t, type) and issubclass(t, BaseModel)]
