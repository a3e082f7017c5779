"""compose.yaml's Kafka (`deploy/kafka-start.sh`): current with the stack's settings, refusing
weak passwords, and, run here with the stack's jars behind the image's script names, a SASL
broker whose role principals get exactly the ACL table once `podium acls apply` ran."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import ClusterAuthorizationFailedError, TopicAuthorizationFailedError
from typer.testing import CliRunner

from podium.cli import app
from podium.core.settings import KafkaSettings, load_settings
from podium.stack import StackSettings, credentials
from podium.stack._kafka import ensure_jars, java_binary
from podium.stack.compose_broker import SCRIPT_PATH, broker_script, password_variable
from tests.helpers import wait_until
from topics.kafka import ensure_topics, make_producer
from topics.names import TopicNames

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / SCRIPT_PATH
USERS = [credentials.CONTROLLER_USER, *credentials.kafka_users()]


def test_the_committed_script_is_the_generated_one() -> None:
    assert SCRIPT.read_text() == broker_script(), (
        "deploy/kafka-start.sh is stale: .venv/bin/python -m podium.stack.compose_broker > "
        "deploy/kafka-start.sh"
    )
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("weak", [None, "short", "has space in it at all", 'quote"quote"quote'])
def test_a_missing_or_weak_password_stops_the_script(weak: str | None, tmp_path: Path) -> None:
    env = {**_passwords(), "CLUSTER_ID": "x", "PODIUM_KAFKA_CONFIG_DIR": str(tmp_path)}
    env.pop("PODIUM_KAFKA_LEDGER_PASSWORD")
    if weak is not None:
        env["PODIUM_KAFKA_LEDGER_PASSWORD"] = weak
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"set PODIUM_KAFKA_LEDGER_PASSWORD to 16 or more" in done.stderr
    assert not (tmp_path / "server.properties").exists()


def _passwords() -> dict[str, str]:
    return {password_variable(user): secrets.token_hex(16) for user in USERS}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def compose_broker(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The script run with the image's `bin/` names standing for the stack's jars."""
    libs = ensure_jars(load_settings(StackSettings))
    java = java_binary()
    bin_dir = tmp_path / "kafka" / "bin"
    bin_dir.mkdir(parents=True)
    shims = {"kafka-storage.sh": "kafka.tools.StorageTool", "kafka-server-start.sh": "kafka.Kafka"}
    for name, main in shims.items():
        shim = bin_dir / name
        shim.write_text(f'#!/bin/bash\nexec {java} -Xmx512m -cp "{libs}/*" {main} "$@"\n')
        shim.chmod(0o755)
    port, controller = _free_port(), _free_port()
    passwords = _passwords()
    env = {
        "PATH": os.environ["PATH"],
        **passwords,
        "CLUSTER_ID": base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode(),
        "KAFKA_HOME": str(tmp_path / "kafka"),
        "PODIUM_KAFKA_DATA_DIR": str(tmp_path / "data"),
        "PODIUM_KAFKA_CONFIG_DIR": str(tmp_path / "config"),
        "PODIUM_KAFKA_HOST": "127.0.0.1",
        "PODIUM_KAFKA_BIND": "127.0.0.1",
        "PODIUM_KAFKA_PORT": str(port),
        "PODIUM_KAFKA_CONTROLLER_PORT": str(controller),
    }
    log = (tmp_path / "broker.log").open("wb")
    broker = subprocess.Popen(
        ["bash", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{port}", passwords
    finally:
        if broker.poll() is None:
            os.killpg(broker.pid, signal.SIGKILL)
        broker.wait(timeout=30)
        log.close()


def _as(bootstrap: str, user: str, passwords: dict[str, str]) -> KafkaSettings:
    return KafkaSettings(
        bootstrap=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=credentials.SASL_MECHANISM,
        sasl_username=user,
        sasl_password=passwords[password_variable(user)],
    )


async def _produces(kafka: KafkaSettings, topic: str) -> bool:
    producer = make_producer(kafka)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"k")
        return True
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
        return False  # without WRITE on a topic, not even a producer id
    finally:
        await producer.stop()


async def _answers(kafka: KafkaSettings) -> bool:
    producer = make_producer(kafka)
    try:
        await producer.start()
        return True
    except Exception:
        return False
    finally:
        await producer.stop()


@pytest.mark.integration
async def test_the_compose_broker_authenticates_and_podium_acls_apply_grants_the_table(
    compose_broker: tuple[str, dict[str, str]],
) -> None:
    bootstrap, passwords = compose_broker
    admin = _as(bootstrap, credentials.ADMIN_USER, passwords)
    await wait_until(lambda: _answers(admin), timeout=120, interval=0.5, message="the broker")
    names = TopicNames()
    await ensure_topics(admin, [names.manifests, names.tasks])
    operator = _as(bootstrap, "podium-operator", passwords)
    assert not await _produces(operator, names.manifests), "no ACL yet, no access"

    env = {
        "PODIUM_KAFKA_BOOTSTRAP": bootstrap,
        "PODIUM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "PODIUM_KAFKA_SASL_MECHANISM": credentials.SASL_MECHANISM,
        "PODIUM_KAFKA_SASL_USERNAME": credentials.ADMIN_USER,
        "PODIUM_KAFKA_SASL_PASSWORD": passwords[password_variable(credentials.ADMIN_USER)],
        "PODIUM_KAFKA_TOPIC_PREFIX": "podium",
    }
    done = await asyncio.to_thread(CliRunner().invoke, app, ["acls", "apply"], env=env)
    assert done.exit_code == 0, done.output
    assert "bindings applied" in done.output

    # the broker applies the new ACLs from its metadata log a moment after they are created
    await wait_until(
        lambda: _produces(operator, names.manifests), timeout=60, interval=0.5,
        message="the operator allowed to write the manifests",
    )  # fmt: skip
    assert await _produces(_as(bootstrap, "podium-submitter", passwords), names.tasks)
    assert not await _produces(_as(bootstrap, "podium-submitter", passwords), names.manifests)
    wrong = operator.with_credentials("podium-operator", "not-the-password-at-all")
    assert not await _answers(wrong)
