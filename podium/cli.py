"""The `podium` command line: a thin layer over the services and the ledger API.

Each group of commands lives in `podium/commands/<noun>.py` and registers itself here.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.markup import escape

from podium.commands import get, ledger, manifests, policy, run, services, stack
from podium.core.errors import PodiumError
from podium.core.settings import ConfigurationError
from podium.output import err_console

app = typer.Typer(
    name="podium",
    help="Podium: a production runtime for multi-agent AI systems on Apache Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (stack, ledger, manifests, get, run, policy, services):
    module.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except (ConfigurationError, PodiumError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
