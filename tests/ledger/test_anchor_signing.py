"""Signed anchors, without Kafka: signatures, replays, forgeries, and the key's settings."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.anchors import (
    LEDGER_KEY,
    AnchorSigner,
    collect,
    private_key_from_hex,
    public_hex,
    task_key,
)
from ledger.settings import LedgerSettings
from podium import environment
from podium.core.errors import PermanentError
from topics.codec import encode
from topics.messages import LedgerAnchor


def _task(signer: AnchorSigner, links: int, task_id: str = "t1") -> LedgerAnchor:
    return signer.sign(
        LedgerAnchor(
            scope="task", task_id=task_id, links=links, hash=f"h{links}", gseq=links, key_id=""
        )
    )


def test_signed_anchors_are_collected_and_forgeries_rejected() -> None:
    signer = AnchorSigner(Ed25519PrivateKey.generate())
    other = AnchorSigner(Ed25519PrivateKey.generate())
    newer, older = _task(signer, 5), _task(signer, 3)
    forged = msgspec.structs.replace(_task(signer, 9), hash="rewritten")
    ledger = signer.sign(LedgerAnchor(scope="ledger", gseq=5, tasks=1, key_id=""))
    records = [
        ("p@0", task_key("t1"), encode(newer)),
        ("p@1", task_key("t1"), encode(older)),  # an older anchor replayed after the newer
        ("p@2", task_key("t1"), encode(forged)),
        ("p@3", task_key("t1"), encode(_task(other, 7))),  # signed with another key
        ("p@4", task_key("t2"), encode(_task(signer, 2))),  # under another task's key
        ("p@5", task_key("t1"), None),  # a tombstone
        ("p@6", LEDGER_KEY, encode(ledger)),
        ("p@7", LEDGER_KEY, b"{not json"),
    ]
    found = collect(records, signer.private.public_key())
    assert found.tasks == {"t1": newer}
    assert found.ledger == ledger
    assert [r.split(":")[0] for r in found.rejected] == ["p@2", "p@3", "p@4", "p@7"]


def test_the_anchor_key_comes_from_settings_or_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path / "no-stack"))
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw().hex()
    public = public_hex(key.public_key())
    from_env = environment.anchor_signer(LedgerSettings(anchor_key=seed))
    assert public_hex(from_env.private.public_key()) == public
    key_file = tmp_path / "anchor.key"
    key_file.write_text(seed + "\n")
    assert public_hex(environment.anchor_public_key(LedgerSettings(anchor_key_file=key_file))) == (
        public
    )
    with pytest.raises(PermanentError, match="PODIUM_LEDGER_ANCHOR_KEY"):
        environment.anchor_signer(LedgerSettings())
    with pytest.raises(PermanentError, match="64 hex digits"):
        private_key_from_hex("abc", what="PODIUM_LEDGER_ANCHOR_KEY")


def test_the_dev_stack_makes_its_anchor_key_once_in_a_private_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path))
    (tmp_path / "stack.json").write_text("{}")
    first = environment.anchor_signer(LedgerSettings())
    again = environment.anchor_signer(LedgerSettings())
    assert first.key_id == again.key_id
    assert (tmp_path / "stack.json").stat().st_mode & 0o777 == 0o600
