"""Sealed Secret values: they open only with the services' private key, unaltered, in the
Secret and under the key they were sealed for."""

from __future__ import annotations

import base64

import pytest

from manifests.models import Secret
from manifests.sealing import (
    SealingError,
    key_id,
    load_private_key,
    load_public_key,
    new_private_key,
    open_sealed,
    open_secret,
    private_key_text,
    public_key_text,
    seal,
    sealed_document,
)

PLAIN = b"sk-live-0123456789abcdef"


def document(name: str, spec: object) -> dict[str, object]:
    return {
        "apiVersion": "orloj.dev/v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "spec": spec,
    }


def sealed_secret(name: str, values: dict[str, str], public: object) -> Secret:
    raw = document(name, {"stringData": values})
    out = sealed_document(raw, Secret.model_validate(raw), public)  # type: ignore[arg-type]
    return Secret.model_validate(out)


def test_round_trip() -> None:
    key = new_private_key()
    sealed = seal(key.public_key(), PLAIN, secret="openai", key="value")
    assert sealed.startswith(f"sealed:v1:{key_id(key.public_key())}:")
    assert open_sealed(key, sealed, secret="openai", key="value") == PLAIN


def test_each_seal_is_new() -> None:
    public = new_private_key().public_key()
    assert seal(public, PLAIN, secret="s", key="value") != seal(
        public, PLAIN, secret="s", key="value"
    )


def test_the_wrong_key_does_not_open_it() -> None:
    sealed = seal(new_private_key().public_key(), PLAIN, secret="s", key="value")
    with pytest.raises(SealingError, match="is sealed to the sealing key"):
        open_sealed(new_private_key(), sealed, secret="s", key="value")


def test_a_forged_key_id_still_does_not_open_it() -> None:
    mine, other = new_private_key(), new_private_key()
    sealed = seal(other.public_key(), PLAIN, secret="s", key="value")
    forged = sealed.replace(key_id(other.public_key()), key_id(mine.public_key()))
    with pytest.raises(SealingError, match="cannot be opened"):
        open_sealed(mine, forged, secret="s", key="value")


@pytest.mark.parametrize("position", [0, 31, 32, 40, -1])
def test_tampered_ciphertext_fails(position: int) -> None:
    key = new_private_key()
    sealed = seal(key.public_key(), PLAIN, secret="s", key="value")
    head, _, text = sealed.rpartition(":")
    box = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    box[position] ^= 0x01
    tampered = f"{head}:{base64.urlsafe_b64encode(bytes(box)).decode().rstrip('=')}"
    with pytest.raises(SealingError, match="cannot be opened"):
        open_sealed(key, tampered, secret="s", key="value")


def test_truncated_or_malformed_values_fail() -> None:
    key = new_private_key()
    sealed = seal(key.public_key(), PLAIN, secret="s", key="value")
    for bad in (sealed[:60], "sealed:v1:nothing", "plain-text", sealed + ":x"):
        with pytest.raises(SealingError):
            open_sealed(key, bad, secret="s", key="value")


def test_moved_to_another_secret_or_key_fails() -> None:
    key = new_private_key()
    sealed = seal(key.public_key(), PLAIN, secret="openai", key="value")
    with pytest.raises(SealingError, match="sealed for another secret or key"):
        open_sealed(key, sealed, secret="attacker-endpoint-secret", key="value")
    with pytest.raises(SealingError, match="sealed for another secret or key"):
        open_sealed(key, sealed, secret="openai", key="other")
    moved = Secret.model_validate(document("stolen", {"sealedData": {"value": sealed}}))
    with pytest.raises(SealingError, match="Secret/stolen key 'value' cannot be opened"):
        open_secret(moved, "value", key)


def test_a_secret_document_is_sealed_whole() -> None:
    key = new_private_key()
    raw = document("tokens", {"stringData": {"api": "A-plain", "value": "V-plain"}})
    raw["metadata"] = {"name": "tokens", "labels": {"team": "a"}}
    out = sealed_document(raw, Secret.model_validate(raw), key.public_key())
    assert out["metadata"] == {"name": "tokens", "labels": {"team": "a"}}
    assert set(out["spec"]) == {"sealedData"}  # type: ignore[arg-type]
    assert b"plain" not in repr(out).encode()
    secret = Secret.model_validate(out)
    assert secret.spec.sealed and secret.spec.keys() == ["api", "value"]
    assert open_secret(secret, "api", key) == b"A-plain"
    assert open_secret(secret, "value", key) == b"V-plain"
    # Already sealed: published as it is.
    assert sealed_document(out, secret, key.public_key()) is out


def test_open_secret_names_what_is_wrong_never_the_value() -> None:
    key = new_private_key()
    secret = sealed_secret("tokens", {"value": "V-plain"}, key.public_key())
    with pytest.raises(SealingError, match=r"Secret/tokens has no key 'api' \(it has value\)"):
        open_secret(secret, "api", key)
    plain = Secret.model_validate(document("raw", {"stringData": {"value": "V-plain"}}))
    with pytest.raises(SealingError, match="Secret/raw is not sealed") as raised:
        open_secret(plain, "value", key)
    assert "V-plain" not in str(raised.value)


def test_key_texts() -> None:
    key = new_private_key()
    again = load_private_key(private_key_text(key), what="PODIUM_ACTOR_SEALING_KEY")
    assert public_key_text(again.public_key()) == public_key_text(key.public_key())
    public = load_public_key(public_key_text(key.public_key()), what="x")
    assert key_id(public) == key_id(key.public_key())
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(SealingError, match="PODIUM_ACTOR_SEALING_KEY is not an X25519 key"):
            load_private_key(bad, what="PODIUM_ACTOR_SEALING_KEY")


def test_podium_get_secrets_shows_keys_never_values() -> None:
    from podium.commands.get import KINDS, _record_json
    from topics.messages import ManifestRecord

    key = new_private_key()
    raw = document("tokens", {"stringData": {"api": "A-plain", "value": "V-plain"}})
    sealed = sealed_document(raw, Secret.model_validate(raw), key.public_key())
    record = ManifestRecord(kind="Secret", name="tokens", generation=1, digest="d", resource=sealed)
    kind, row_of = KINDS["secrets"]
    assert kind == "Secret"
    assert row_of(record) == {
        "name": "tokens",
        "keys": "api, value",
        "sealed_to": key_id(key.public_key()),
    }
    shown = _record_json(record)
    assert shown["resource"]["spec"] == {
        "sealedData": {k: f"sealed:v1:{key_id(key.public_key())}:..." for k in ("api", "value")}
    }
    ciphertexts = [v.rsplit(":", 1)[1] for v in sealed["spec"]["sealedData"].values()]  # type: ignore[index]
    assert not any(c in repr(shown) for c in ciphertexts)


def test_python_m_manifests_sealing_makes_a_pair(capsys: pytest.CaptureFixture[str]) -> None:
    from manifests.sealing import main

    main()
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    private = load_private_key(lines["PODIUM_ACTOR_SEALING_KEY"], what="private")
    public = load_public_key(lines["PODIUM_SEALING_PUBLIC_KEY"], what="public")
    assert open_sealed(private, seal(public, PLAIN, secret="s", key="k"), secret="s", key="k")
