"""Bring the local stack up, report on it, and bring it down: the API behind `podium stack`."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.stack import _kafka, _postgres, credentials
from podium.stack._processes import StackError, cmdline, require_binary, terminate_group
from podium.stack._settings import StackSettings
from podium.stack.state import KafkaProcess, StackState, load_state, save_state, stack_dir
from topics.acl_admin import create_acls
from topics.acls import ROLES, AclBinding, acl_bindings, agent_actor_bindings
from topics.names import TopicNames
from topics.scram_admin import upsert_scram_users

Progress = Callable[[str], AbstractContextManager[object]]
"""Shows a long wait (e.g. `rich.console.Console.status`); does nothing by default."""


@contextlib.contextmanager
def _quiet(message: str) -> Iterator[None]:
    yield


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One `up` or `down` at a time per stack folder (several shells and test runs share it)."""
    folder = stack_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "stack.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class UpReport:
    """What `up` found or did: the state, and which components it started itself."""

    state: StackState
    started_kafka: bool
    started_postgres: bool


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None
    port: int | None
    address: str | None


def up(settings: StackSettings, *, progress: Progress = _quiet) -> UpReport:
    """Start what is not running (idempotent), wait for readiness, record the state file."""
    _require_binaries(settings)
    with _locked():
        return _up(settings, progress)


def _up(settings: StackSettings, progress: Progress) -> UpReport:
    state = load_state()
    if state.policy_signing_key is None or state.policy_verify_key is None:
        from policy_service.keys import DEV_KEY_PREFIX, generate

        key_id = f"{DEV_KEY_PREFIX}{secrets.token_hex(4)}"
        state.policy_signing_key, state.policy_verify_key = generate(key_id)
    if state.approver_signing_key is None or state.approver_verify_key is None:
        from policy_service.keys import DEV_KEY_PREFIX, generate

        key_id = f"{DEV_KEY_PREFIX}approver-{secrets.token_hex(4)}"
        state.approver_signing_key, state.approver_verify_key = generate(key_id)
    if state.ledger_anchor_key is None:
        state.ledger_anchor_key = secrets.token_hex(32)  # any 32 bytes are an Ed25519 seed
    credentials.ensure_sealing_keys()
    started_kafka = started_postgres = False
    stale = state.postgres is not None and state.postgres.dsn != _postgres.dsn(settings)
    if state.postgres is None or stale or not _postgres.is_running(state.postgres):
        with progress("Starting PostgreSQL..."):
            state.postgres = _postgres.start(settings)
        started_postgres = True
    save_state(state)
    if state.kafka is None or not state.kafka.sasl or not _kafka.is_running(state.kafka):
        if state.kafka is not None:
            _stop_kafka(state, settings)
        if not _kafka.libs_dir(settings).is_dir():
            with progress(f"Resolving Kafka {settings.kafka_version} jars with Maven..."):
                _kafka.ensure_jars(settings)
        with progress(f"Starting Kafka {settings.kafka_version}..."):
            state.kafka = _kafka.start(settings)
        started_kafka = True
    elif not _kafka.metadata_ok(_kafka.admin_settings(state.kafka)):
        with progress("Waiting for Kafka to answer..."):
            _kafka.wait_ready(state.kafka, timeout=settings.ready_timeout_s)
    save_state(state)
    _grant_roles(state.kafka)
    return UpReport(state=state, started_kafka=started_kafka, started_postgres=started_postgres)


def acl_prefixes() -> list[str]:
    """The topic prefixes the stack's roles are granted: `podium`, and `PODIUM_KAFKA_TOPIC_PREFIX`
    when it is set."""
    return sorted({"podium", os.environ.get("PODIUM_KAFKA_TOPIC_PREFIX") or "podium"})


def _grant_roles(kafka: KafkaProcess) -> None:
    """Every role's ACLs (`topics.acls`) for its principal, as the admin, and the agents' own
    principals made earlier (a new broker storage has lost them); idempotent."""
    admin = _kafka.admin_settings(kafka)
    bindings = [
        binding
        for prefix in acl_prefixes()
        for role in ROLES
        for binding in acl_bindings(
            role, TopicNames(prefix), f"User:{credentials.kafka_username(role)}"
        )
    ]
    _run(create_acls(admin, bindings))
    agents = credentials.agents_with_users()
    if agents:
        _grant_agents(kafka, agents)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:  # inside or outside a running event loop
        pool.submit(asyncio.run, coroutine).result()


def _agent_bindings(agent: str) -> list[AclBinding]:
    principal = f"User:{credentials.agent_username(agent)}"
    return [
        binding
        for prefix in acl_prefixes()
        for binding in agent_actor_bindings(agent, TopicNames(prefix), principal)
    ]


def _grant_agents(kafka: KafkaProcess, agents: Sequence[str]) -> None:
    admin = _kafka.admin_settings(kafka)
    passwords = {
        credentials.agent_username(agent): credentials.ensure_agent_password(agent)
        for agent in agents
    }
    _run(upsert_scram_users(admin, passwords))
    _run(create_acls(admin, [b for agent in agents for b in _agent_bindings(agent)]))
    # The controller has the credentials; the broker learns them from the metadata log a moment
    # later. Return once each user can log in, so that `podium actor AGENT` can follow at once.
    deadline = time.monotonic() + 60
    for user in passwords:
        while not _kafka.metadata_ok(credentials.client_settings(kafka.bootstrap, user)):
            if time.monotonic() > deadline:
                raise StackError(f"the broker did not accept {user}'s new credentials in 60 s")
            time.sleep(0.2)


def grant_agent_users(agents: Sequence[str]) -> list[str]:
    """Give each agent's actors a principal of their own (`podium-actor-<agent>`, its password
    in the stack's `secrets/`), with the ACLs of one agent (`topics.acls.agent_actor_bindings`);
    idempotent. `podium actor AGENT` then connects as it. Returns the users."""
    for agent in agents:
        TopicNames().agent(agent)  # a name that cannot make topics is refused before anything
    state = load_state()
    if state.kafka is None or not _kafka.is_running(state.kafka):
        raise StackError("Kafka is not running: start the stack with `podium stack up`")
    if not state.kafka.sasl:
        raise StackError("this stack's Kafka has no SASL listener: `podium stack down` and up")
    _grant_agents(state.kafka, agents)
    return [credentials.agent_username(agent) for agent in agents]


def _require_binaries(settings: StackSettings) -> None:
    """Fail early, naming the Debian package, when a program the stack needs is missing."""
    _kafka.java_binary()
    if not _kafka.libs_dir(settings).is_dir():
        require_binary("mvn", package="maven")
    for name in ("initdb", "pg_ctl", "pg_isready", "psql"):
        _postgres.binary(name)


def status() -> list[ComponentStatus]:
    """What runs, from the state file, checked against live pids and ports."""
    state = load_state()
    rows = []
    kafka, pg = state.kafka, state.postgres
    rows.append(
        ComponentStatus(
            name="kafka",
            running=kafka is not None and _kafka.is_running(kafka),
            pid=kafka.pid if kafka else None,
            port=kafka.port if kafka else None,
            address=kafka.bootstrap if kafka else None,
        )
    )
    rows.append(
        ComponentStatus(
            name="postgres",
            running=pg is not None and _postgres.is_running(pg),
            pid=pg.pid if pg else None,
            port=pg.port if pg else None,
            address=_postgres.masked(pg.dsn) if pg else None,
        )
    )
    return rows


def down(settings: StackSettings) -> StackState:
    """Stop Kafka (its process group) and PostgreSQL; keep their data and the signing key."""
    if not stack_dir().exists():
        return StackState()
    with _locked():
        return _down(settings)


def _down(settings: StackSettings) -> StackState:
    state = load_state()
    _stop_kafka(state, settings)
    data = Path(state.postgres.data_dir) if state.postgres else _postgres.postgres_home() / "data"
    if data.exists():
        _postgres.stop(data, settings)
    state.kafka = None
    state.postgres = None
    save_state(state)
    return state


def _stop_kafka(state: StackState, settings: StackSettings) -> None:
    if state.kafka is not None and "kafka.Kafka" in cmdline(state.kafka.pid):
        terminate_group(state.kafka.pid, timeout=settings.stop_timeout_s)
