"""Helpers for tests against the real stack: poll with a deadline instead of sleeping.

Every deadline here is multiplied by `TIMEOUT_SCALE`: `PODIUM_TEST_TIMEOUT_SCALE` when set (a
positive number), else 2 under `CI=true` and 1 elsewhere. `scaled(seconds)` applies it to a
deadline of your own; the per-test timeouts (`pytest.mark.timeout`, the ini's `timeout`) are
scaled the same way by `tests/conftest.py`.

- `wait_until(predicate, timeout=..., interval=...)`: poll a sync or async predicate until it is
  truthy; return its value, or raise `AssertionError` naming the predicate at the deadline.
- `consume_until(settings, topic, n, timeout=...)`: read at least `n` records of `topic` from the
  beginning (read_committed, a throwaway group) and return them.
- `consume_decoded(settings, topic, n, type_, timeout=...)`: the same, decoded with
  `topics.codec.decode` into `type_`.

Child processes (the services of the fault scenarios, as separate OS processes):
- `start_child(args, **popen)`: `subprocess.Popen` as the leader of a process group of its own
  (`start_new_session`), so that the child and whatever it starts end together.
- `kill_child(proc)`: SIGKILL to the child's group (no drain: a crash).
- `wait_for_line(log, text, proc, timeout=...)`: wait until the child's log file holds `text`
  (a service's ready line); fail with the log's tail when the child exits or the deadline passes.
- `stop_children(procs, grace_s=...)`: SIGTERM to every group, SIGKILL to what remains after
  the grace period; the children are reaped.
Whatever happens to the test run, no group outlives it: at the interpreter's exit (atexit), and on
SIGTERM or SIGINT (before the previous handler runs), every group still registered gets SIGKILL.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import hashlib
import inspect
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from podium.composition.ledger_api import Approver
from podium.core.settings import KafkaSettings
from policy_service.keys import parse_signing_key, parse_verify_keys
from topics.codec import decode
from topics.kafka import make_consumer


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The `PODIUM_KAFKA_*` variables that make a child process use `kafka`: the cluster, the
    topic prefix, the partitions and the principal (SASL) of the test."""
    return kafka.as_env()


def key_pair(key_id: str) -> tuple[str, str]:
    """A decision key pair for tests, the same in every process that asks for `key_id`: the
    texts of `PODIUM_POLICY_SIGNING_KEY` and `PODIUM_POLICY_VERIFY_KEYS`."""
    seed = hashlib.sha256(f"podium test key {key_id}".encode()).digest()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw_public = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (
        f"{key_id}={base64.b64encode(seed).decode()}",
        f"{key_id}={base64.b64encode(raw_public).decode()}",
    )


APPROVER_KEY, APPROVER_PUBLIC = key_pair("test-approver")
"""The approver key pair of the tests: deciders sign with the first, the policy service trusts
the second (`PODIUM_POLICY_APPROVER_KEYS`)."""


def approver_for(policy_verify_keys: str) -> Approver:
    """A decider holding the tests' approver key, reading the book as a policy service whose
    public keys are `policy_verify_keys` does."""
    trusted = {**parse_verify_keys(APPROVER_PUBLIC), **parse_verify_keys(policy_verify_keys)}
    return Approver(signer=parse_signing_key(APPROVER_KEY), trusted=trusted)


T = TypeVar("T")


def _timeout_scale() -> float:
    raw = os.environ.get("PODIUM_TEST_TIMEOUT_SCALE", "")
    if not raw:
        return 2.0 if os.environ.get("CI", "").lower() in ("1", "true", "yes") else 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not scale > 0:
        raise ValueError(f"PODIUM_TEST_TIMEOUT_SCALE={raw!r}: expected a positive number, e.g. 2")
    return scale


TIMEOUT_SCALE = _timeout_scale()


def scaled(seconds: float) -> float:
    """A deadline of `seconds` on a quiet machine, stretched by `TIMEOUT_SCALE`."""
    return seconds * TIMEOUT_SCALE


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 30.0,  # noqa: ASYNC109 (a deadline for the polling, not an I/O timeout)
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy, and return that.
    The deadline is `scaled(timeout)`."""
    timeout = scaled(timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout} s: {what}")
        await asyncio.sleep(interval)


async def consume_until(
    settings: KafkaSettings,
    topic: str,
    n: int,
    timeout: float = 30.0,  # noqa: ASYNC109 (a deadline for the polling, not an I/O timeout)
    **consumer_options: Any,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `topic` from the beginning until `n` records arrived (read_committed), or fail
    (after `scaled(timeout)`)."""
    timeout = scaled(timeout)
    consumer = make_consumer(
        settings,
        topic,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        fetch_max_wait_ms=100,
        **consumer_options,
    )
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < n:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"only {len(records)} of {n} records arrived on {topic} within {timeout} s"
                )
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def consume_decoded(
    settings: KafkaSettings,
    topic: str,
    n: int,
    type_: type[T],
    timeout: float = 30.0,  # noqa: ASYNC109
) -> list[T]:
    """`consume_until`, each value decoded into `type_` with the project's codec."""
    return [decode(r.value, type_) for r in await consume_until(settings, topic, n, timeout)]


# --- child processes: each in a process group of its own, ended whatever happens --------------

_groups: dict[int, subprocess.Popen[bytes]] = {}  # process group id (= the leader's pid) -> child
_groups_lock = threading.Lock()
_previous_handlers: dict[int, Any] = {}
_atexit_registered = False


def start_child(args: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(args, **popen)` in a new session, hence a new process group; the group
    is killed at the latest when this interpreter exits or receives SIGTERM or SIGINT."""
    _install_cleanup()
    proc: subprocess.Popen[bytes] = subprocess.Popen(list(args), start_new_session=True, **popen)
    with _groups_lock:
        _groups[proc.pid] = proc
    return proc


async def wait_for_line(
    log: Path,
    text: str,
    proc: subprocess.Popen[bytes],
    timeout: float = 120.0,  # noqa: ASYNC109 (a deadline for the polling)
) -> None:
    """Wait until `log` (the child's output) contains `text`; the deadline is scaled."""

    def tail() -> str:
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"

    def seen() -> bool:
        if log.exists() and text in log.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            raise AssertionError(
                f"{log.name}: exited ({proc.returncode}) before {text!r}:\n{tail()}"
            )
        return False

    try:
        await wait_until(seen, timeout=timeout, interval=0.2, message=f"{log.name}: {text!r}")
    except AssertionError as exc:
        if proc.poll() is not None:
            raise
        raise AssertionError(f"{exc}\n{tail()}") from None


def kill_child(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL to the child's whole group, and reap the child."""
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout)
    _forget(proc)


def stop_children(procs: Iterable[subprocess.Popen[bytes]], grace_s: float = 20.0) -> None:
    """SIGTERM to every child's group at once, SIGKILL to each group after `grace_s` (also to
    what a child left behind in its group when it exited); every child is reaped."""
    children = list(procs)
    for proc in children:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in children:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _forget(proc)


def kill_all_children() -> None:
    """SIGKILL to every group `start_child` made that was not stopped yet (atexit, signals)."""
    with _groups_lock:
        pgids = list(_groups)
        _groups.clear()
    for pgid in pgids:
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _groups_lock:
        _groups.pop(proc.pid, None)


def _install_cleanup() -> None:
    """Once per process: the atexit hook, and the SIGTERM/SIGINT handlers (which can only be set
    from the main thread; a child started first from another thread gets them later)."""
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(kill_all_children)
        _atexit_registered = True
    if _previous_handlers or threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        _previous_handlers[signum] = signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Kill the children's groups, then do what the previous handler would have done (pytest's
    KeyboardInterrupt on SIGINT; the default action, death, on SIGTERM)."""
    kill_all_children()
    previous = _previous_handlers.get(signum)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
