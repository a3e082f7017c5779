"""The services' sealing key: the dev stack makes the pair (mode 600), the composition root hands
the public half to `podium apply` and the private half to the actors, from their settings first;
a Secret is never applied without a key to seal it to."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from actors.settings import ActorSettings
from manifests.apply import apply_paths, seal_secrets
from manifests.loader import parse_files
from manifests.sealing import (
    SealingError,
    key_id,
    new_private_key,
    private_key_text,
    public_key_text,
)
from podium import environment
from podium.core.errors import PermanentError
from podium.core.settings import ConfigurationError, KafkaSettings, load_settings
from podium.stack import credentials
from podium.stack.state import KafkaProcess, StackState, save_state
from topics.names import TopicNames

DEV_BOOTSTRAP = "127.0.0.1:1"


@pytest.fixture
def stack_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path))
    for name in (
        "PODIUM_SEALING_PUBLIC_KEY",
        "PODIUM_SEALING_PUBLIC_KEY_FILE",
        "PODIUM_ACTOR_SEALING_KEY",
        "PODIUM_ACTOR_SEALING_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    kafka = KafkaProcess(
        bootstrap=DEV_BOOTSTRAP, pid=1, port=1, controller_port=2, version="4.1.1", data_dir="x"
    )
    save_state(StackState(kafka=kafka))
    return tmp_path


def test_the_dev_stack_makes_the_pair_once(stack_dir: Path) -> None:
    credentials.ensure_sealing_keys()
    private, public = credentials.sealing_key_file(), credentials.sealing_public_key_file()
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(private.stat().st_mode) == stat.S_IMODE(public.stat().st_mode) == 0o600
    first = private.read_text()
    public.unlink()
    credentials.ensure_sealing_keys()  # the private key is kept; its public half made again
    assert private.read_text() == first
    dev = KafkaSettings(bootstrap=DEV_BOOTSTRAP)
    opener = environment.actor_sealing_key(ActorSettings(), dev)
    sealer = environment.sealing_public_key(dev)
    assert opener is not None and sealer is not None
    assert key_id(opener.public_key()) == key_id(sealer)


def test_dev_keys_only_with_the_dev_stacks_broker(stack_dir: Path) -> None:
    credentials.ensure_sealing_keys()
    elsewhere = KafkaSettings(bootstrap="kafka.example:9092")
    assert environment.sealing_public_key(elsewhere) is None
    assert environment.actor_sealing_key(ActorSettings(), elsewhere) is None


def test_the_settings_come_first(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.ensure_sealing_keys()
    dev = KafkaSettings(bootstrap=DEV_BOOTSTRAP)
    mine = new_private_key()
    monkeypatch.setenv("PODIUM_SEALING_PUBLIC_KEY", public_key_text(mine.public_key()))
    monkeypatch.setenv("PODIUM_ACTOR_SEALING_KEY", private_key_text(mine))
    sealer = environment.sealing_public_key(dev)
    opener = environment.actor_sealing_key(load_settings(ActorSettings), dev)
    assert sealer is not None and opener is not None
    assert key_id(sealer) == key_id(opener.public_key()) == key_id(mine.public_key())
    key_file = stack_dir / "actor.key"
    key_file.write_text(private_key_text(mine) + "\n")
    monkeypatch.delenv("PODIUM_ACTOR_SEALING_KEY")
    monkeypatch.setenv("PODIUM_ACTOR_SEALING_KEY_FILE", str(key_file))
    opener = environment.actor_sealing_key(load_settings(ActorSettings), dev)
    assert opener is not None and key_id(opener.public_key()) == key_id(mine.public_key())


def test_bad_keys_name_the_variable(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = KafkaSettings(bootstrap=DEV_BOOTSTRAP)
    monkeypatch.setenv("PODIUM_SEALING_PUBLIC_KEY", "not-a-key")
    with pytest.raises(SealingError, match="PODIUM_SEALING_PUBLIC_KEY is not an X25519 key"):
        environment.sealing_public_key(dev)
    monkeypatch.setenv("PODIUM_ACTOR_SEALING_KEY", "x")
    monkeypatch.setenv("PODIUM_ACTOR_SEALING_KEY_FILE", "/nowhere")
    with pytest.raises(ConfigurationError, match="PODIUM_ACTOR_SEALING_KEY"):
        load_settings(ActorSettings)
    monkeypatch.delenv("PODIUM_ACTOR_SEALING_KEY")
    with pytest.raises(PermanentError, match="PODIUM_ACTOR_SEALING_KEY_FILE /nowhere"):
        environment.actor_sealing_key(load_settings(ActorSettings), dev)


SECRET = """\
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: k}
spec:
  stringData: {value: plain-value-123}
"""


async def test_no_secret_is_applied_without_a_key(tmp_path: Path) -> None:
    file = tmp_path / "secret.yaml"
    file.write_text(SECRET)
    parsed, _ = parse_files([file])
    _, errors = seal_secrets(parsed, None)
    assert [str(e) for e in errors] == [
        f"{file}:4: Secret/k: there is no sealing key to seal this Secret with, and its values "
        "are never published in plain text: set PODIUM_SEALING_PUBLIC_KEY (or "
        "PODIUM_SEALING_PUBLIC_KEY_FILE) to the services' public key, or start the dev stack "
        "(`podium stack up` makes a key pair)"
    ]
    # Refused before Kafka is contacted (nothing listens at this address).
    report = await apply_paths(KafkaSettings(bootstrap="127.0.0.1:1"), TopicNames(), [file])
    assert not report.ok and not report.changed
