"""`podium stack up|status|down` on a stack of its own (own folder, own ports).

The shared development stack is never touched: this stack lives in a temporary
`PODIUM_STACK_DIR` on free ports, and reuses only the cached Kafka jars.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.stack._processes import cmdline, pid_alive, port_open

pytestmark = pytest.mark.integration

PODIUM = Path(sys.executable).parent / "podium"
ROOT = Path(__file__).resolve().parents[2]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def own_stack() -> Iterator[dict[str, str]]:
    """The environment of a separate stack; it is stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="podium-stack-test-"))
    folder.chmod(0o755)  # PostgreSQL runs as an unprivileged user under root
    kafka, controller, postgres = _free_ports(3)
    shared_cache = Path(os.environ.get("PODIUM_STACK_DIR", ROOT / ".podium")) / "cache"
    env = {
        **os.environ,
        "PODIUM_STACK_DIR": str(folder),
        "PODIUM_STACK_KAFKA_PORT": str(kafka),
        "PODIUM_STACK_KAFKA_CONTROLLER_PORT": str(controller),
        "PODIUM_STACK_POSTGRES_PORT": str(postgres),
        "PODIUM_STACK_CACHE_DIR": str(shared_cache),
        "COLUMNS": "200",
    }
    try:
        yield env
    finally:
        subprocess.run([PODIUM, "stack", "down"], env=env, capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _podium(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PODIUM, *args], env=env, capture_output=True, text=True, timeout=170, check=False
    )
    assert done.returncode == 0, f"podium {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and text in cmdline(int(proc.name)) and pid_alive(int(proc.name)):
            found.append(f"{proc.name}: {cmdline(int(proc.name))}")
    return found


def _children_of(pid: int) -> list[int]:
    children = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[-1].split()[1]) == pid:
            children.append(int(proc.name))
    return children


def test_up_twice_status_and_down_leave_nothing_behind(own_stack: dict[str, str]) -> None:
    first = _podium(own_stack, "stack", "up")
    assert "Kafka 4.1.1: started" in first
    assert f"127.0.0.1:{own_stack['PODIUM_STACK_KAFKA_PORT']}" in first
    dsn = f"postgresql://postgres:***@127.0.0.1:{own_stack['PODIUM_STACK_POSTGRES_PORT']}/podium"
    assert dsn in first.replace("\n", "")

    second = _podium(own_stack, "stack", "up")
    assert "Kafka 4.1.1: already running" in second
    assert "PostgreSQL: already running" in second

    rows = {
        row["component"]: row
        for row in json.loads(_podium(own_stack, "stack", "status", "-o", "json"))
    }
    assert rows["kafka"]["running"] and rows["postgres"]["running"]
    assert rows["kafka"]["port"] == int(own_stack["PODIUM_STACK_KAFKA_PORT"])
    assert rows["postgres"]["address"] == dsn
    kafka_pid, pg_pid = rows["kafka"]["pid"], rows["postgres"]["pid"]
    pg_children = _children_of(pg_pid)
    assert pg_children, "PostgreSQL should run its background workers"
    state_path = Path(own_stack["PODIUM_STACK_DIR"]) / "stack.json"
    assert state_path.stat().st_mode & 0o777 == 0o600, "the state file holds the dev signing key"
    state = json.loads(state_path.read_text())
    key = state["policy_signing_key"]
    assert key.startswith("dev-") and state["policy_verify_key"].startswith(key.split("=")[0])

    table = _podium(own_stack, "stack", "status")
    assert "kafka" in table and "postgres" in table and str(kafka_pid) in table

    _podium(own_stack, "stack", "down")
    assert not pid_alive(kafka_pid)
    assert not pid_alive(pg_pid)
    assert not [pid for pid in pg_children if pid_alive(pid)]
    assert _processes_mentioning(own_stack["PODIUM_STACK_DIR"]) == []
    assert not port_open(int(own_stack["PODIUM_STACK_KAFKA_PORT"]))
    assert not port_open(int(own_stack["PODIUM_STACK_POSTGRES_PORT"]))

    after = json.loads(_podium(own_stack, "stack", "status", "-o", "json"))
    assert not any(row["running"] for row in after)
    state = json.loads((Path(own_stack["PODIUM_STACK_DIR"]) / "stack.json").read_text())
    assert state["policy_signing_key"] == key, "the signing key survives a restart"


def test_missing_binary_is_one_line_naming_the_package(own_stack: dict[str, str]) -> None:
    env = {**own_stack, "PATH": "/nonexistent"}
    done = subprocess.run(
        [PODIUM, "stack", "up"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "openjdk-17-jre-headless" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
