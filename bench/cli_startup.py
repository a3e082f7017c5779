"""How long the command line takes from process start to exit, against a bare interpreter.

Runs, interleaved, N times each (after one warm-up run of each): `python -c pass` (the baseline:
the interpreter and site start-up of the same virtualenv), `podium --help` and `podium validate
-f manifests/examples/research-pipeline`. Reports the median wall time and the median CPU time
(user + system, from the children's rusage: steadier than wall time on a busy machine), and the
ratios of the medians to the baseline's. Needs no stack.

    .venv/bin/python bench/cli_startup.py [--runs 21]

The last line is for `bench/run_all.py`:
`cli help_ms=<ms> validate_ms=<ms> baseline_ms=<ms> help_ratio=<x> validate_ratio=<x>`
(wall-time medians), preceded by the same figures of CPU time on a `cli-cpu` line.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PODIUM = str(Path(PYTHON).parent / "podium")
EXAMPLE = str(ROOT / "manifests" / "examples" / "research-pipeline")

COMMANDS: dict[str, list[str]] = {
    "baseline": [PYTHON, "-c", "pass"],
    "help": [PODIUM, "--help"],
    "validate": [PODIUM, "validate", "-f", EXAMPLE],
}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run of `command` to its exit; it must succeed."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    return wall * 1000, (_children_cpu_s() - cpu_before) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command (median)")
    args = parser.parse_args()
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():
        run_once(command)  # warm-up: bytecode caches, page cache
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            w, c = run_once(command)
            wall[name].append(w)
            cpu[name].append(c)
    for name, command in COMMANDS.items():
        shown = " ".join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command))
        print(
            f"{name:>8}: wall p50 {statistics.median(wall[name]):7.1f} ms, "
            f"cpu p50 {statistics.median(cpu[name]):7.1f} ms  ({shown})"
        )
    for label, times in (("cli-cpu", cpu), ("cli", wall)):
        med = {name: statistics.median(values) for name, values in times.items()}
        base = med["baseline"]
        print(
            f"{label} help_ms={med['help']:.1f} validate_ms={med['validate']:.1f} "
            f"baseline_ms={base:.1f} help_ratio={med['help'] / base:.2f} "
            f"validate_ratio={med['validate'] / base:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
