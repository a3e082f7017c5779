"""Signed anchors of the ledger's chains: pure functions, no Kafka, no database.

An anchor (`topics.messages.LedgerAnchor`) is a chain head signed with the ledger's Ed25519
key: a task's (its links, the hash of its last link, that link's global sequence number) or the
ledger's (the global high-water mark and the number of tasks up to it). They are published to a
compacted topic outside the database, so whoever can rewrite the database cannot rewrite them;
`audit.verify` checks the rows against them with the public key alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from podium.core.errors import PermanentError
from topics.messages import LedgerAnchor

LEDGER_KEY = b"ledger"
"""The key of the ledger-wide anchor on the anchors topic; a task's is `task:<task_id>`."""

_encoder = msgspec.json.Encoder(order="sorted")


def task_key(task_id: str) -> bytes:
    return f"task:{task_id}".encode()


def key_id(public: Ed25519PublicKey) -> str:
    """A short id of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def public_hex(public: Ed25519PublicKey) -> str:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def private_key_from_hex(text: str, *, what: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from its 32-byte seed in hex; `what` names where it came from."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise PermanentError(f"{what}: expected an Ed25519 private key as 64 hex digits")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_from_hex(text: str, *, what: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise PermanentError(f"{what}: expected an Ed25519 public key as 64 hex digits")
    return Ed25519PublicKey.from_public_bytes(raw)


def new_private_hex() -> str:
    """A fresh private key as 64 hex digits (the dev stack's key)."""
    return Ed25519PrivateKey.generate().private_bytes_raw().hex()


def read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PermanentError(f"PODIUM_LEDGER_ANCHOR_KEY_FILE {path}: {exc.strerror}") from exc


def _signed_bytes(anchor: LedgerAnchor) -> bytes:
    return _encoder.encode(msgspec.structs.replace(anchor, signature=""))


@dataclass(frozen=True, slots=True)
class AnchorSigner:
    """The ledger's signing key."""

    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def sign(self, anchor: LedgerAnchor) -> LedgerAnchor:
        anchor = msgspec.structs.replace(anchor, key_id=self.key_id, signature="")
        return msgspec.structs.replace(
            anchor, signature=self.private.sign(_signed_bytes(anchor)).hex()
        )


def signature_ok(anchor: LedgerAnchor, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(bytes.fromhex(anchor.signature), _signed_bytes(anchor))
    except (InvalidSignature, ValueError):
        return False
    return anchor.key_id == key_id(public)


@dataclass(slots=True)
class Anchors:
    """The latest valid anchors read from the topic, and the records that were not valid."""

    tasks: dict[str, LedgerAnchor] = field(default_factory=dict)
    ledger: LedgerAnchor | None = None
    rejected: list[str] = field(default_factory=list)


def collect(
    records: Iterable[tuple[str, bytes | None, bytes | None]], public: Ed25519PublicKey
) -> Anchors:
    """Anchors from (where, key, value) records in offset order. Per task the anchor furthest
    along wins (an older one replayed later does not roll a head back); a record that does not
    decode or whose signature fails is named in `rejected`; tombstones are ignored."""
    found = Anchors()
    for where, key, value in records:
        if value is None:
            continue
        try:
            anchor = msgspec.json.decode(value, type=LedgerAnchor)
        except msgspec.MsgspecError:
            found.rejected.append(f"{where}: not an anchor")
            continue
        expected_key = LEDGER_KEY if anchor.scope == "ledger" else task_key(anchor.task_id)
        if not signature_ok(anchor, public) or key != expected_key:
            found.rejected.append(f"{where}: signature not valid for the anchors' public key")
            continue
        if anchor.scope == "ledger":
            if found.ledger is None or anchor.gseq >= found.ledger.gseq:
                found.ledger = anchor
        else:
            known = found.tasks.get(anchor.task_id)
            if known is None or anchor.links >= known.links:
                found.tasks[anchor.task_id] = anchor
    return found
