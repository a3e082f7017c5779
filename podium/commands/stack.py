"""`podium stack up|down|status` (being written)."""

import typer


def register(app: typer.Typer) -> None:
    pass
