"""The command line starts fast: `podium --help`, `validate` and `compile` load no heavy module.

Each command runs in a fresh interpreter (as the `podium` script would: `podium.cli:main`); at exit
it writes the names in `sys.modules` to a file, and the test looks for what these commands must
never load: the model SDKs, the web framework, OpenTelemetry, the Kafka and PostgreSQL clients and
the composition root that imports them all. Nothing here measures time (`bench/cli_startup.py`
does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import scaled

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "research-pipeline"

# Runs `podium ARGS...`; at exit, the loaded modules go to the file named by the first argument.
RUNNER = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["podium", *sys.argv[2:]]
from podium.cli import main
main()
"""

HEAVY = (
    "openai",
    "anthropic",
    "fastapi",
    "starlette",
    "uvicorn",
    "opentelemetry",
    "aiokafka",
    "asyncpg",
    "podium.composition",
)

COMMANDS = {
    "help": ["--help"],
    "validate": ["validate", "-f", str(EXAMPLE)],
    "compile": ["compile", "-f", str(EXAMPLE)],
    "compile-json": ["compile", "-f", str(EXAMPLE), "-o", "json"],
    "validate-help": ["validate", "--help"],
}


def loaded_modules(tmp_path: Path, args: list[str]) -> list[str]:
    """The modules `podium ARGS` had loaded when it exited (it must exit 0)."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PODIUM_"))}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args],
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert done.returncode == 0, f"podium {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    modules: list[str] = json.loads(out.read_text())
    return modules


def heavy_in(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("command", COMMANDS)
def test_light_commands_import_no_heavy_module(tmp_path: Path, command: str) -> None:
    modules = loaded_modules(tmp_path, COMMANDS[command])
    assert "podium.cli" in modules  # the runner did run the command line
    heavy = heavy_in(modules)
    assert not heavy, f"`podium {' '.join(COMMANDS[command])}` imported {heavy}"


def test_the_check_sees_heavy_modules(tmp_path: Path) -> None:
    """The runner reports what a command loads: a module imported on the way is seen."""
    out = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", "import podium.composition;" + RUNNER, str(out), "--help"],
        cwd=ROOT,
        capture_output=True,
        timeout=scaled(120),
        check=True,
    )
    heavy = heavy_in(json.loads(out.read_text()))
    assert "podium.composition" in heavy
    assert "fastapi" in heavy
