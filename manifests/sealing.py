"""Sealing of Secret values: no plaintext secret is ever published to the manifests topic.

`podium apply` seals each value to the services' sealing key, an X25519 key pair whose public half
is all the command line holds; the services that use secrets (the actors; the ledger for webhook
secrets) hold the private half. One value is sealed as an ECIES-style box: a new ephemeral X25519
key per value, its ECDH secret with the recipient's key stretched by HKDF-SHA256 into a
ChaCha20-Poly1305 key and nonce, and the secret's name and key as associated data, so that a sealed
value copied into another Secret (or under another key) does not open. Written as text:

    sealed:v1:<key id, 16 hex digits>:<base64url(ephemeral public key || ciphertext || tag)>

The key id (the start of the SHA-256 of the recipient's public key) lets a service that holds
another key say so, instead of a bare "cannot decrypt".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from manifests.models.secrets import Secret
from podium.core.errors import PermanentError

PREFIX = "sealed:v1:"
_INFO = b"podium sealed secret v1"
_KEY_BYTES = 32


class SealingError(PermanentError):
    """A sealed value cannot be opened (another key, altered, moved) or a key is malformed."""


# --- keys ------------------------------------------------------------------------------------


def new_private_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def private_key_text(private: X25519PrivateKey) -> str:
    """Base64 of the 32 raw bytes (what the settings and the stack's key file hold)."""
    return base64.b64encode(private.private_bytes_raw()).decode()


def public_key_text(public: X25519PublicKey) -> str:
    return base64.b64encode(_raw(public)).decode()


def _key_bytes(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise SealingError(
            f"{what} is not an X25519 key: expected the base64 of 32 bytes (`podium stack up` "
            "makes a pair in .podium/secrets/sealing.key and sealing.pub)"
        )
    return raw


def load_private_key(text: str, *, what: str) -> X25519PrivateKey:
    """A private key from its text; `what` names the setting or file in the error."""
    return X25519PrivateKey.from_private_bytes(_key_bytes(text, what))


def load_public_key(text: str, *, what: str) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(_key_bytes(text, what))


def key_id(public: X25519PublicKey) -> str:
    """16 hex digits that name a public key (in sealed values and messages)."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


# --- one value ---------------------------------------------------------------------------------


def _bound_to(secret: str, key: str) -> bytes:
    return b"podium/secret/v1\x00" + secret.encode() + b"\x00" + key.encode()


def _cipher(shared: bytes, ephemeral: bytes, recipient: bytes) -> tuple[ChaCha20Poly1305, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(), length=32 + 12, salt=ephemeral + recipient, info=_INFO
    ).derive(shared)
    return ChaCha20Poly1305(okm[:32]), okm[32:]


def seal(public: X25519PublicKey, plaintext: bytes, *, secret: str, key: str) -> str:
    """`plaintext` sealed to `public`, bound to Secret `secret`'s key `key`."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    cipher, nonce = _cipher(ephemeral.exchange(public), ephemeral_raw, _raw(public))
    box = ephemeral_raw + cipher.encrypt(nonce, plaintext, _bound_to(secret, key))
    text = base64.urlsafe_b64encode(box).decode().rstrip("=")
    return f"{PREFIX}{key_id(public)}:{text}"


def open_sealed(private: X25519PrivateKey, sealed: str, *, secret: str, key: str) -> bytes:
    """The plaintext of a value `seal` made for Secret `secret`'s key `key`.

    Raises `SealingError` (never naming the plaintext) when it was sealed to another key,
    altered, or sealed for another secret or key."""
    where = f"Secret/{secret} key {key!r}"
    if not sealed.startswith(PREFIX) or sealed.count(":") != 3:
        raise SealingError(f"{where} is not a sealed value (sealed:v1:...)")
    sealed_to, _, text = sealed[len(PREFIX) :].partition(":")
    mine = key_id(private.public_key())
    if sealed_to != mine:
        raise SealingError(
            f"{where} is sealed to the sealing key {sealed_to}, and this service holds the key "
            f"{mine}: apply the Secret again with the services' public key, or give the service "
            "the private key it was sealed to"
        )
    try:
        box = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        box = b""
    if len(box) <= _KEY_BYTES + 16:
        raise SealingError(f"{where} is not a sealed value (truncated)")
    ephemeral_raw, ciphertext = box[:_KEY_BYTES], box[_KEY_BYTES:]
    recipient = _raw(private.public_key())
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
        cipher, nonce = _cipher(shared, ephemeral_raw, recipient)
        return cipher.decrypt(nonce, ciphertext, _bound_to(secret, key))
    except (InvalidTag, ValueError):
        raise SealingError(
            f"{where} cannot be opened: it was altered, or sealed for another secret or key; "
            "apply the Secret again"
        ) from None


# --- a Secret ----------------------------------------------------------------------------------


def sealed_document(raw: dict[str, Any], secret: Secret, public: X25519PublicKey) -> dict[str, Any]:
    """The document to publish for `secret` (written as `raw`): every value sealed, under
    `spec.sealedData`; one already sealed is returned as it is."""
    if secret.spec.sealed:
        return raw
    sealed = {
        key: seal(public, value, secret=secret.name, key=key)
        for key, value in secret.spec.plain_values().items()
    }
    return {**raw, "spec": {"sealedData": sealed}}


def open_secret(secret: Secret, key: str, private: X25519PrivateKey) -> bytes:
    """The plaintext of `secret`'s `key` (a Secret of the catalog, as applied: sealed).

    Raises `SealingError` naming the secret and key (never the value) when the key is missing,
    the secret is not sealed, or its value cannot be opened with `private`."""
    spec = secret.spec
    if key not in spec.keys():
        raise SealingError(
            f"Secret/{secret.name} has no key {key!r} (it has {', '.join(spec.keys())})"
        )
    if not spec.sealed:
        raise SealingError(
            f"Secret/{secret.name} is not sealed: only `podium apply`, which seals every value, "
            "may publish a Secret"
        )
    return open_sealed(private, spec.sealed_data[key], secret=secret.name, key=key)


def open_applied(
    secret: Secret | None,
    name: str,
    key: str,
    private: X25519PrivateKey | None,
    *,
    holder: str,
    key_setting: str,
) -> bytes:
    """`open_secret` for a service: `secret` is the catalog's Secret `name` (None when it is not
    applied) and `private` the service's sealing key from `key_setting` (None when unset); each
    missing piece is a `SealingError` naming the fix. `holder` names the service ("this actor")."""
    if secret is None:
        raise SealingError(f"Secret/{name} is not applied; apply it with `podium apply`")
    if private is None:
        raise SealingError(
            f"{holder} has no sealing key to open Secret/{name} with; the operator sets "
            f"{key_setting} (or {key_setting}_FILE) to the services' private key"
        )
    return open_secret(secret, key, private)


def open_text(
    secret: Secret | None,
    name: str,
    key: str,
    private: X25519PrivateKey | None,
    *,
    holder: str,
    key_setting: str,
) -> str:
    """`open_applied`, as one line of text (an API key, a header's value, a client secret):
    a value that is not UTF-8, is empty or holds control characters is a `SealingError`."""
    raw = open_applied(secret, name, key, private, holder=holder, key_setting=key_setting)
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SealingError(f"Secret/{name} key {key!r}: the value is not UTF-8 text") from None
    if not text or not text.isprintable():
        raise SealingError(
            f"Secret/{name} key {key!r}: the value is empty or holds control characters, which "
            "a key or a header cannot; apply the Secret again with the value alone"
        )
    return text


def main() -> None:
    """`python -m manifests.sealing`: a new sealing key pair, as the two settings that hold it
    (the private key for the services that open Secrets, the public key for `podium apply`)."""
    private = new_private_key()
    print(f"PODIUM_ACTOR_SEALING_KEY={private_key_text(private)}")
    print(f"PODIUM_SEALING_PUBLIC_KEY={public_key_text(private.public_key())}")


if __name__ == "__main__":
    main()
