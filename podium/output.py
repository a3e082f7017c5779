"""Rendering of command output: a rich table on a terminal, or `-o json|yaml`."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Mapping, Sequence
from io import StringIO
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table
from ruamel.yaml import YAML

# Piped output (a log file, `make demo`, CI) is not cut to rich's default of 80 columns.
_PIPED_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED_WIDTH)


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("-o", "--output", "--output-format", help="table, json or yaml"),
]
"""The `-o` option every command that prints resources or rows takes."""


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value, order="deterministic")


def dump_json(value: Any) -> str:
    return json.dumps(to_builtins(value), indent=2, sort_keys=True, ensure_ascii=False)


def dump_yaml(value: Any) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    buffer = StringIO()
    yaml.dump(to_builtins(value), buffer)
    return buffer.getvalue()


def emit(
    value: Any,
    fmt: OutputFormat,
    *,
    rows: Sequence[Mapping[str, Any]] | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print `value` as JSON or YAML, or `rows` as a table with the given columns."""
    if fmt is OutputFormat.JSON:
        sys.stdout.write(dump_json(value) + "\n")
        return
    if fmt is OutputFormat.YAML:
        sys.stdout.write(dump_yaml(value))
        return
    table_rows = rows if rows is not None else _rows_of(value)
    cols = list(columns or (list(table_rows[0].keys()) if table_rows else []))
    table = Table(title=title, show_lines=False)
    for col in cols:
        table.add_column(col)
    for row in table_rows:
        table.add_row(*(_cell(row.get(col)) for col in cols))
    console.print(table)


def _rows_of(value: Any) -> list[Mapping[str, Any]]:
    builtins = to_builtins(value)
    if isinstance(builtins, list):
        return [r if isinstance(r, dict) else {"value": r} for r in builtins]
    if isinstance(builtins, dict):
        return [{"key": k, "value": v} for k, v in builtins.items()]
    return [{"value": builtins}]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
