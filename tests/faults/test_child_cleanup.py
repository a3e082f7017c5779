"""No child of an interrupted test run outlives it.

A run (a plain Python script, or pytest running one test) starts a child with
`tests.helpers.start_child`; the child starts a grandchild in its group, and both would sleep for
ten minutes. The run is interrupted with SIGINT (Ctrl-C) or SIGTERM; the child's process group
must then be gone: no living process left in it. Needs no stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import start_child, stop_children, wait_until

ROOT = Path(__file__).resolve().parents[2]

# A child that starts a grandchild (same group) and sleeps; what a `podium dev` with helpers is.
CHILD = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "time.sleep(600)"
)

# The interrupted run writes the child's group id to PGID_FILE once the grandchild runs.
STARTS_CHILD = f"""
import os, sys, time
from pathlib import Path
from tests.helpers import start_child

def test_starts_a_child():
    child = start_child([sys.executable, "-c", {CHILD!r}])
    while len([p for p in Path("/proc").iterdir() if p.name.isdigit()
               and _pgrp(p) == child.pid]) < 2:
        time.sleep(0.05)
    Path(os.environ["PGID_FILE"]).write_text(str(child.pid))
    time.sleep(600)

def _pgrp(proc):
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return -1
"""

# SIGINT is restored to Python's KeyboardInterrupt: a run started in the background by a shell
# inherits SIGINT ignored, which is not what a user's Ctrl-C meets.
RUNNERS = {
    "python": "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    + STARTS_CHILD
    + "\ntest_starts_a_child()\n",
    "pytest": "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "import pytest; sys.exit(pytest.main(sys.argv[1:]))\n",
}


def living_members(pgid: int) -> list[int]:
    """The pids of the processes of group `pgid` that are not zombies."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(proc.name))
    return members


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("runner", ["python", "pytest"])
async def test_an_interrupted_run_leaves_no_child(
    tmp_path: Path, runner: str, signum: signal.Signals
) -> None:
    pgid_file = tmp_path / "pgid"
    test_file = tmp_path / "test_starts_child.py"
    test_file.write_text(STARTS_CHILD)
    args = [sys.executable, "-c", RUNNERS[runner]]
    if runner == "pytest":
        ini = tmp_path / "pytest.ini"
        ini.write_text("[pytest]\n")
        args += ["-q", "-p", "no:cacheprovider", "-c", str(ini), str(test_file)]
    env = {**os.environ, "PGID_FILE": str(pgid_file), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = start_child(args, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    pgid = 0
    try:
        await wait_until(
            lambda: pgid_file.exists() or run.poll() is not None,
            timeout=120,
            message="the run started its child",
        )
        assert run.poll() is None, log.read_text(errors="replace")
        pgid = int(pgid_file.read_text())
        assert len(living_members(pgid)) == 2  # the child and its grandchild

        run.send_signal(signum)
        await wait_until(lambda: run.poll() is not None, timeout=60, message="the run ended")
        await wait_until(
            lambda: not living_members(pgid),
            timeout=60,
            message=f"process group {pgid} gone after {signum.name}",
        )
    finally:
        stop_children([run], grace_s=5)
        if pgid and living_members(pgid):
            os.killpg(pgid, signal.SIGKILL)  # this test failed: leave nothing behind anyway
