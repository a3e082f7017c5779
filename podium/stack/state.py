"""The local stack's state file: where `podium stack up` records what it started.

Every other command and the tests read the Kafka bootstrap address and the PostgreSQL DSN from
here, so nobody copies them by hand. `PODIUM_KAFKA_BOOTSTRAP` / `PODIUM_DATABASE_URL` override it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

STATE_DIR_ENV = "PODIUM_STACK_DIR"


class KafkaProcess(msgspec.Struct, kw_only=True):
    bootstrap: str
    pid: int
    port: int
    controller_port: int
    version: str
    data_dir: str
    sasl: bool = False
    """SASL/SCRAM and ACLs on (a broker recorded without them is restarted by `up`)."""


class PostgresProcess(msgspec.Struct, kw_only=True):
    dsn: str
    pid: int
    port: int
    data_dir: str


class StackState(msgspec.Struct, kw_only=True):
    kafka: KafkaProcess | None = None
    postgres: PostgresProcess | None = None
    policy_signing_key: str | None = None
    """A development Ed25519 key pair for policy decisions (`<key id>=<base64>`, id `dev-...`),
    made by `podium stack up`: the policy service signs with it when `PODIUM_POLICY_SIGNING_KEY`
    is not set, requesters check with its public half (`policy_verify_key`) when
    `PODIUM_POLICY_VERIFY_KEYS` is not set. Accepted only with the local stack's Kafka."""
    policy_verify_key: str | None = None
    approver_signing_key: str | None = None
    """A development approver key pair (`<key id>=<base64>`, id `dev-approver-...`), made by
    `podium stack up`: the ledger API and `podium approve|deny` sign their decisions with it when
    `PODIUM_APPROVER_SIGNING_KEY` is not set; the policy service trusts its public half
    (`approver_verify_key`) when `PODIUM_POLICY_APPROVER_KEYS` is not set."""
    approver_verify_key: str | None = None
    ledger_anchor_key: str | None = None
    """A random development Ed25519 key (64 hex digits) with which the ledger signs its anchors,
    made by `podium stack up`; used when `PODIUM_LEDGER_ANCHOR_KEY(_FILE)` is not set."""
    api_url: str | None = None
    """The ledger API's base URL on the local stack, recorded by `podium ledger`."""


def stack_dir() -> Path:
    """The folder that holds the stack's data, jars and state file (git-ignored).

    `PODIUM_STACK_DIR` when set; else the nearest `.podium` folder in the working directory or
    above it (so commands work from anywhere inside the project); else `./.podium`.
    """
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit).resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / ".podium").is_dir():
            return folder / ".podium"
    return cwd / ".podium"


def state_file() -> Path:
    return stack_dir() / "stack.json"


def load_state() -> StackState:
    path = state_file()
    if not path.exists():
        return StackState()
    try:
        return msgspec.json.decode(path.read_bytes(), type=StackState)
    except (msgspec.DecodeError, json.JSONDecodeError):
        return StackState()


def save_state(state: StackState) -> None:
    """Write the state file, readable by its owner only (it holds the dev signing key)."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # It holds development keys: readable by its owner only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(msgspec.json.format(msgspec.json.encode(state)))
    tmp.chmod(0o600)
    tmp.replace(path)
