"""`Secret` (Orloj's format): named values such as API keys, referenced by `auth.secretRef`.

A manifest writes `stringData` (plain text) or `data` (base64), merged (`stringData` wins on a
shared key), as in Orloj. `podium apply` never publishes them: it seals every value to the
services' key and publishes `sealedData` instead (`manifests.sealing`), which is also what the
catalog holds when it is read back from the manifests topic.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from manifests.models._base import ResourceBase, _Model

DEFAULT_SECRET_KEY = "value"
"""The key a `secretRef` without `:key` reads (Orloj's default)."""

MAX_VALUE_BYTES = 64 * 1024
"""The largest value of a Secret (a key, a token or a certificate fits many times)."""

_KEY = re.compile(r"^[-._A-Za-z0-9]{1,253}$")
_SEALED = re.compile(r"^sealed:v1:[0-9a-f]{16}:[A-Za-z0-9_-]{60,}$")
_REF = re.compile(  # the name as NAME_PATTERN has it
    r"^(?:(?P<namespace>[A-Za-z0-9][A-Za-z0-9._-]*)/)?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,199})"
    r"(?::(?P<key>[-._A-Za-z0-9]{1,253}))?$"
)


def _key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(
            f"{value[:60]!r} is not a Secret key: use letters, digits, '-', '_' and '.' "
            "(at most 253)"
        )
    return value


def _text_only(value: Any) -> Any:
    # Never echo the value: it is a secret.
    if not isinstance(value, str):
        raise ValueError(
            f"must be a string (found {type(value).__name__}); quote it in YAML ('...')"
        )
    return value


def _plain(value: str) -> str:
    if not value:
        raise ValueError("is empty; every value of a Secret must be non-empty")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise ValueError(f"is larger than {MAX_VALUE_BYTES // 1024} KiB")
    return value


def _base64(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; every value of a Secret must be non-empty")
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "is not valid base64 (`data` holds base64, as in Orloj); write plain text under "
            "`stringData` instead"
        ) from None
    if not decoded:
        raise ValueError("is empty; every value of a Secret must be non-empty")
    if len(decoded) > MAX_VALUE_BYTES:
        raise ValueError(f"is larger than {MAX_VALUE_BYTES // 1024} KiB")
    return value.strip()


def _sealed(value: str) -> str:
    if not _SEALED.match(value):
        raise ValueError(
            "is not a value sealed by `podium apply` (sealed:v1:<key id>:<base64url>); "
            "write plain values under `stringData` or `data` and let apply seal them"
        )
    return value


SecretKey = Annotated[str, AfterValidator(_key)]
PlainValue = Annotated[str, BeforeValidator(_text_only), AfterValidator(_plain)]
Base64Value = Annotated[str, BeforeValidator(_text_only), AfterValidator(_base64)]
SealedValue = Annotated[str, BeforeValidator(_text_only), AfterValidator(_sealed)]


class SecretSpec(_Model):
    data: dict[SecretKey, Base64Value] = {}
    string_data: dict[SecretKey, PlainValue] = Field(default={}, alias="stringData")
    sealed_data: dict[SecretKey, SealedValue] = Field(default={}, alias="sealedData")
    """Podium's: the values as `podium apply` sealed them (what the manifests topic holds)."""

    @model_validator(mode="after")
    def _one_form(self) -> SecretSpec:
        if self.sealed_data and (self.data or self.string_data):
            raise ValueError(
                "sealedData cannot be combined with data or stringData: write every value "
                "under stringData or data (podium apply seals them all), or apply sealedData alone"
            )
        if not (self.sealed_data or self.data or self.string_data):
            raise ValueError(
                "a Secret needs at least one value: `stringData: {value: ...}` or "
                "`data: {value: <base64>}`"
            )
        return self

    @property
    def sealed(self) -> bool:
        return bool(self.sealed_data)

    def keys(self) -> list[str]:
        """The keys of the secret (never its values), sorted."""
        return sorted({*self.data, *self.string_data, *self.sealed_data})

    def plain_values(self) -> dict[str, bytes]:
        """Key -> plaintext of a secret not sealed yet: `data` decoded, then `stringData` over
        it (Orloj's merge)."""
        values = {key: base64.b64decode(text) for key, text in self.data.items()}
        values.update({key: text.encode() for key, text in self.string_data.items()})
        return dict(sorted(values.items()))


class Secret(ResourceBase):
    """Named secret values; the services read them only sealed (see the module)."""

    kind_name: ClassVar[str] = "Secret"
    kind: Literal["Secret"]
    spec: SecretSpec


def parse_secret_ref(ref: str) -> tuple[str | None, str, str]:
    """`[namespace/]name[:key]` -> (namespace, name, key); the key defaults to `value`."""
    match = _REF.match(ref.strip())
    if match is None:
        raise ValueError(
            f"{ref!r} is not a secret reference: write `name`, `namespace/name` or `name:key`"
        )
    return match["namespace"], match["name"], match["key"] or DEFAULT_SECRET_KEY


def _ref(value: str) -> str:
    parse_secret_ref(value)
    return value.strip()


SecretRef = Annotated[str, AfterValidator(_ref)]
"""A reference to a Secret's value: `name`, `namespace/name`, with `:key` (default `value`)."""
