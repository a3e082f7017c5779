"""The `podium` command line: a thin layer over the services and the ledger API.

Each group of commands lives in `podium/commands/<noun>.py` and registers itself here.

The command line starts fast: registering a command imports only typer, rich and the light
modules its options name. What a command runs (the composition root and, through it, the model
SDKs, the web framework, the Kafka and PostgreSQL clients, OpenTelemetry) is imported inside the
command's body, so `podium --help`, `validate` and `compile` never load it
(`tests/foundation/test_cli_imports.py` checks this; `bench/cli_startup.py` measures it).
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.markup import escape

from podium.commands import (
    acls,
    audit,
    controls,
    get,
    ledger,
    manifests,
    memory,
    policy,
    run,
    services,
    stack,
    tasks,
)
from podium.core.errors import PodiumError
from podium.output import err_console

app = typer.Typer(
    name="podium",
    help="Podium: a production runtime for multi-agent AI systems on Apache Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The order of `podium --help`: manifests, tasks, services, the stack.
for module in (
    manifests,
    get,
    tasks,
    run,
    ledger,
    policy,
    controls,
    memory,
    audit,
    services,
    acls,
    stack,
):
    module.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except PodiumError as exc:
        _fail(exc)
    except Exception as exc:
        # Settings are loaded only by the commands that need them: a ConfigurationError can only
        # come from a module already imported, so this import costs nothing.
        from podium.core.settings import ConfigurationError

        if not isinstance(exc, ConfigurationError):
            raise
        _fail(exc)


def _fail(exc: Exception) -> None:
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    sys.exit(2)
