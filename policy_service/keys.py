"""The decision keys: the policy service's Ed25519 signing key and the requesters' public keys.

Both travel as text, `<key id>=<base64 of the raw 32-byte key>`: one signing key
(`PODIUM_POLICY_SIGNING_KEY`, or a file holding the same text), and up to two public keys
(`PODIUM_POLICY_VERIFY_KEYS`, comma-separated), so a rotation can publish the next key to every
requester before the service signs with it. Key ids that start with `dev-` belong to the local
stack (`podium stack up` makes one) and are refused anywhere else.

Make a key pair with `python -m policy_service.keys <key id>`: it prints the two settings.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

KEY_BYTES = 32
"""Length of a raw Ed25519 private key (its seed) and of a raw public key."""

MAX_VERIFY_KEYS = 2
"""The current key and the next (or the previous), during a rotation."""

DEV_KEY_PREFIX = "dev-"
"""Key ids of the local stack's development key pair."""

_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyFormatError(ValueError):
    """A key's text cannot be used; the message says why (never the key itself)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The policy service's private key, with its id."""

    key_id: str
    private: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.key_id, self.private.public_key())

    @property
    def is_dev(self) -> bool:
        return self.key_id.startswith(DEV_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A public key of the policy service, with its id."""

    key_id: str
    public: Ed25519PublicKey

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    @property
    def is_dev(self) -> bool:
        return self.key_id.startswith(DEV_KEY_PREFIX)

    def text(self) -> str:
        raw = self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.key_id}={base64.b64encode(raw).decode()}"


VerifyKeys = Mapping[str, VerifyKey]
"""The public keys a requester accepts, by key id."""


def _split(text: str) -> tuple[str, bytes]:
    key_id, sep, encoded = text.strip().partition("=")
    key_id = key_id.strip()
    if not sep or not encoded.strip():
        raise KeyFormatError("expected <key id>=<base64 key>")
    if not _KEY_ID.match(key_id):
        raise KeyFormatError(
            f"key id {key_id!r}: letters, digits and ._- only, at most 64 characters"
        )
    standard = encoded.strip().replace("-", "+").replace("_", "/")  # the URL-safe alphabet too
    try:
        raw = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"key {key_id!r} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyFormatError(
            f"key {key_id!r} is {len(raw)} bytes; an Ed25519 key is exactly {KEY_BYTES} bytes"
        )
    return key_id, raw


def parse_signing_key(text: str) -> SigningKey:
    """`<key id>=<base64 32-byte private key>`."""
    key_id, raw = _split(text)
    return SigningKey(key_id, Ed25519PrivateKey.from_private_bytes(raw))


def parse_verify_keys(text: str, *, at_most: int = MAX_VERIFY_KEYS) -> dict[str, VerifyKey]:
    """`<key id>=<base64 32-byte public key>[,<key id>=<...>]`: at most `at_most` (two: the
    current and the next), ids distinct."""
    keys: dict[str, VerifyKey] = {}
    for part in (p for p in re.split(r"[,\s]+", text) if p):
        key_id, raw = _split(part)
        if key_id in keys:
            raise KeyFormatError(f"key id {key_id!r} is listed twice")
        keys[key_id] = VerifyKey(key_id, Ed25519PublicKey.from_public_bytes(raw))
    if not keys:
        raise KeyFormatError("no key")
    if len(keys) > at_most:
        raise KeyFormatError(
            f"{len(keys)} keys; at most {at_most} (the current and the next of each) are valid"
        )
    return keys


def generate(key_id: str) -> tuple[str, str]:
    """A new key pair as the two settings' texts: (signing key, verify key)."""
    if not _KEY_ID.match(key_id):
        raise KeyFormatError(f"key id {key_id!r}: letters, digits and ._- only")
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    signing = f"{key_id}={base64.b64encode(raw).decode()}"
    return signing, SigningKey(key_id, private).verify_key().text()


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m policy_service.keys KEY_ID", file=sys.stderr)
        return 2
    signing, verify = generate(argv[0])
    print(f"PODIUM_POLICY_SIGNING_KEY={signing}")
    print(f"PODIUM_POLICY_VERIFY_KEYS={verify}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
