"""Run every benchmark of `bench/` on the running stack and print one table of the targets.

Each benchmark is run as its own process (`.venv/bin/python bench/<name>.py`), one after the
other, and its output is kept; the figures come from its last lines:

- `policy_latency.py`: `policy p50_ratio=<x> p99_ratio=<y> rps=<n>`
- `ledger_ingest.py`: `spend_p95_ms=<ms>` and `ledger ingest_ratio=<x> events_per_s=<n>`
- `e2e_throughput.py`: `e2e hop_p50_ratio=<x> hop_p99_ratio=<y> tasks_per_s=<n>`
- `cli_startup.py`: `cli help_ms=<ms> validate_ms=<ms> baseline_ms=<ms> help_ratio=<x> ...` (wall
  time) and the same on a `cli-cpu` line (CPU time); it needs no stack
- `auth_cost.py`: `auth hop_ratio=<w> p50_ratio=<x> p99_ratio=<y> c64_p50_ratio=<z>
  connect_sasl_ms=<ms> connect_plain_ms=<ms> sign_us=<us> verify_us=<us>` (two brokers of its own)

Prints, per figure: the measured value, its baseline, the ratio, the target and whether it is
met; then the machine (cores, RAM, CPU model). Exit status 0 even when a target is missed (the
table says so); 1 when a benchmark fails to run.

    .venv/bin/python bench/run_all.py [--only e2e_throughput] [--quick]

`--quick` passes smaller sizes to each benchmark (a smoke run; the figures are noisier).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    # name: (arguments, --quick arguments)
    "policy_latency": ([], ["--requests", "150", "--concurrent-requests", "600"]),
    "ledger_ingest": ([], ["--events", "50000", "--stored", "200000", "--queries", "100"]),
    "e2e_throughput": ([], ["--sequential", "30", "--burst", "100"]),
    "cli_startup": ([], ["--runs", "5"]),
    "auth_cost": ([], ["--requests", "150", "--connects", "10", "--signatures", "1000"]),
}


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    value: str
    baseline: str
    ratio: str
    target: str
    met: bool | None


def figures(line_prefix: str, output: str) -> dict[str, float]:
    """`key=value` pairs of the last line that starts with `line_prefix`."""
    for line in reversed(output.splitlines()):
        if line.startswith(line_prefix):
            return {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.]+)", line)}
    return {}


def ms_pair(pattern: str, output: str) -> tuple[str, str]:
    """Two millisecond figures matched on a line of the output ("" when absent)."""
    found = re.search(pattern, output, re.MULTILINE)
    return (f"{found.group(1)} ms", f"{found.group(2)} ms") if found else ("", "")


def rows_of(name: str, output: str) -> list[Row]:
    if name == "policy_latency":
        f = figures("policy ", output)
        if not f:
            return []
        raw = ms_pair(r"^raw c=1 .*p50=\s*([\d.]+) ms p99=\s*([\d.]+) ms", output)
        pol = ms_pair(r"^policy c=1 .*p50=\s*([\d.]+) ms p99=\s*([\d.]+) ms", output)
        return [
            Row(
                "policy decision p50",
                pol[0],
                f"raw request-reply {raw[0]}",
                f"{f['p50_ratio']:.2f}x",
                "<= 1.3x",
                f["p50_ratio"] <= 1.3,
            ),
            Row(
                "policy decision p99",
                pol[1],
                f"raw request-reply {raw[1]}",
                f"{f['p99_ratio']:.2f}x",
                "<= 1.5x",
                f["p99_ratio"] <= 1.5,
            ),
            Row("policy decisions/s (64 concurrent)", f"{f['rps']:.0f}/s", "", "", "", None),
        ]
    if name == "ledger_ingest":
        ingest = figures("ledger ", output)
        spend = figures("spend_p95_ms", output)
        copy = re.search(r"^raw COPY: .* = ([\d,]+) rows/s", output, re.MULTILINE)
        rows = []
        if ingest:
            rows += [
                Row(
                    "ledger ingest",
                    f"{ingest['events_per_s']:.0f} events/s",
                    f"raw asyncpg COPY {copy.group(1) if copy else '?'} rows/s",
                    f"{ingest['ingest_ratio']:.2f}x",
                    ">= 0.5x",
                    ingest["ingest_ratio"] >= 0.5,
                ),
                Row(
                    "ledger ingest rate",
                    f"{ingest['events_per_s']:.0f} events/s",
                    "",
                    "",
                    ">= 20,000/s",
                    ingest["events_per_s"] >= 20_000,
                ),
            ]
        if spend:
            stored = re.search(r"spend query over ([\d,]+) events", output)
            rows.append(
                Row(
                    f"spend query p95 ({stored.group(1) if stored else '?'} events)",
                    f"{spend['spend_p95_ms']:.1f} ms",
                    "",
                    "",
                    "< 100 ms",
                    spend["spend_p95_ms"] < 100,
                )
            )
        return rows
    if name == "e2e_throughput":
        f = figures("e2e ", output)
        if not f:
            return []
        raw = ms_pair(r"^raw +hop: p50 ([\d.]+) ms, p99 ([\d.]+) ms", output)
        pod = ms_pair(r"^podium hop: p50 ([\d.]+) ms, p99 ([\d.]+) ms", output)
        return [
            Row(
                "orchestration hop p50 (mock model)",
                pod[0],
                f"raw txn loop {raw[0]}",
                f"{f['hop_p50_ratio']:.2f}x",
                "<= 2x",
                f["hop_p50_ratio"] <= 2.0,
            ),
            Row(
                "orchestration hop p99 (mock model)",
                pod[1],
                f"raw txn loop {raw[1]}",
                f"{f['hop_p99_ratio']:.2f}x",
                "",
                None,
            ),
            Row("3-agent pipeline throughput", f"{f['tasks_per_s']:.1f} tasks/s", "", "", "", None),
        ]
    if name == "cli_startup":
        return cli_rows(figures("cli ", output), figures("cli-cpu ", output))
    if name == "auth_cost":
        return auth_rows(figures("auth ", output))
    return []


def auth_rows(f: dict[str, float]) -> list[Row]:
    """SASL/SCRAM with ACLs against plaintext, and the decision's signature: no targets, the
    README says what they cost."""
    if not f:
        return []
    return [
        Row("produce-to-consume hop p50, SASL + ACLs", "", "plaintext broker",
            f"{f['hop_ratio']:.2f}x", "", None),
        Row("request-reply p50, SASL + ACLs", "", "plaintext broker", f"{f['p50_ratio']:.2f}x",
            "", None),
        Row("request-reply p50 (64 concurrent), SASL + ACLs", "", "plaintext broker",
            f"{f['c64_p50_ratio']:.2f}x", "", None),
        Row("new connection, SASL/SCRAM", f"{f['connect_sasl_ms']:.1f} ms",
            f"plaintext {f['connect_plain_ms']:.1f} ms",
            f"{f['connect_sasl_ms'] / f['connect_plain_ms']:.2f}x", "", None),
        Row("Ed25519 decision sign / verify", f"{f['sign_us']:.0f} / {f['verify_us']:.0f} us",
            "", "", "", None),
    ]  # fmt: skip


CLI_CPU_TARGET_MS = 500.0  # what still feels instant at a prompt


def cli_rows(wall: dict[str, float], cpu: dict[str, float]) -> list[Row]:
    """`podium --help` and `podium validate`, start to exit, against `python -c pass`."""
    if not wall or not cpu:
        return []
    rows = []
    for command, key in (("podium --help", "help"), ("podium validate", "validate")):
        rows += [
            Row(
                f"{command}, wall time p50",
                f"{wall[key + '_ms']:.0f} ms",
                f"python -c pass {wall['baseline_ms']:.0f} ms",
                f"{wall[key + '_ratio']:.1f}x",
                "",
                None,
            ),
            Row(
                f"{command}, CPU time p50",
                f"{cpu[key + '_ms']:.0f} ms",
                f"python -c pass {cpu['baseline_ms']:.0f} ms",
                f"{cpu[key + '_ratio']:.1f}x",
                f"< {CLI_CPU_TARGET_MS:.0f} ms",
                cpu[key + "_ms"] < CLI_CPU_TARGET_MS,
            ),
        ]
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores (nproc), {mem_kb / 1024 / 1024:.1f} GiB RAM, {cpu}, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def table(rows: list[Row]) -> str:
    header = ("figure", "value", "baseline", "ratio", "target", "met")
    cells = [
        (
            r.figure,
            r.value,
            r.baseline,
            r.ratio,
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True)) + " |"
        for cell in cells
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), default=[])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    rows: list[Row] = []
    failed = []
    for name in args.only or list(BENCHMARKS):
        full, quick = BENCHMARKS[name]
        command = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        print(f"--- {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        print(proc.stdout, end="")
        found = rows_of(name, proc.stdout)
        if proc.returncode != 0 or not found:
            print(proc.stderr[-4000:], file=sys.stderr)
            failed.append(name)
        rows += found
        print(f"({name}: {time.monotonic() - started:.0f} s)\n", flush=True)
    print(table(rows))
    print(f"\nmachine: {machine()}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
