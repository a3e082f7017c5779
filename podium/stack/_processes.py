"""Small process helpers: find binaries, spawn detached processes, check pids and ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from podium.core.errors import PodiumError


class StackError(PodiumError):
    """The local stack cannot be started or stopped; the message says why and what to do."""


_SYSTEM_DIRS = {"setsid": (Path("/usr/bin"),), "runuser": (Path("/usr/sbin"), Path("/sbin"))}
"""Tools of the base system, found even when PATH is short (as under some sudo setups)."""


def require_binary(name: str, *, package: str, extra_dirs: Sequence[Path] = ()) -> Path:
    """Find `name` on PATH or in `extra_dirs`, or fail naming the Debian package to install."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in (*extra_dirs, *_SYSTEM_DIRS.get(name, ())):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise StackError(
        f"`{name}` is not installed: install the Debian package `{package}` "
        f"(apt-get install -y {package})"
    )


def run(
    args: Sequence[str | Path],
    *,
    what: str,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a command to completion; its output goes into the error when it fails."""
    try:
        done = subprocess.run(
            [str(a) for a in args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise StackError(f"{what} failed (exit {done.returncode}): " + " | ".join(output))
    return done.stdout


def spawn_detached(args: Sequence[str | Path], *, log_file: Path, cwd: Path) -> int:
    """Start a process in its own session, outliving this one; return its pid.

    A short-lived shell starts it in the background through `setsid`, so the process is
    re-parented (nobody here has to reap it) and leads its own process group.
    """
    setsid = require_binary("setsid", package="util-linux")
    script = 'exec "$0" "$@" </dev/null >>"$LOG" 2>&1 &\necho $!'
    done = subprocess.run(
        ["/bin/sh", "-c", script, str(setsid), *(str(a) for a in args)],
        env={**os.environ, "LOG": str(log_file)},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(done.stdout.strip())


def pid_alive(pid: int) -> bool:
    """True when `pid` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def terminate_group(pid: int, *, timeout: float) -> None:
    """SIGTERM the process group led by `pid`; SIGKILL it after `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)
    if pid_alive(pid):
        raise StackError(f"process {pid} survived SIGKILL")


def tail(path: Path, lines: int = 10) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
