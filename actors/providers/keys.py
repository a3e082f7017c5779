"""Where a provider's API key comes from: a variable the operator allows (`api_key_env`), or a
sealed `Secret` (`auth.secretRef`) that the actor opens with its sealing key.

A key is read when the provider makes its client, at its first call, so that a key that cannot be
had fails that model call with a `PermanentModelError` naming the endpoint, the secret and the fix,
never with the value, and never falls back to no key or to another key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.providers.errors import PermanentModelError
from actors.settings import SEALING_KEY_SETTING
from manifests.models import Secret, parse_secret_ref
from manifests.sealing import SealingError, open_text

MASK = "***"


class ApiKey(Protocol):
    def value(self) -> str:
        """The key; raises `PermanentModelError` when there is none to be had."""
        ...


@dataclass(frozen=True, slots=True)
class EnvKey:
    """The value of an environment variable (checked against the allow-list by the factory)."""

    provider: str
    variable: str

    def value(self) -> str:
        value = os.environ.get(self.variable, "")
        if not value:
            raise PermanentModelError(
                f"{self.provider}: the API key variable {self.variable} is not set; export "
                f"{self.variable} or point the ModelEndpoint's api_key_env at the variable that "
                "holds the key",
                provider=self.provider,
            )
        return value


@dataclass(frozen=True, slots=True)
class NoKey:
    """An openai-compatible server that needs no key (the SDK wants some string)."""

    def value(self) -> str:
        return "not-needed"


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A value of a sealed Secret of the catalog (None when the secret is not applied)."""

    provider: str
    where: str
    ref: str
    secret: Secret | None
    sealing_key: X25519PrivateKey | None

    def value(self) -> str:
        _, name, key = parse_secret_ref(self.ref)
        try:
            return open_text(
                self.secret,
                name,
                key,
                self.sealing_key,
                holder="this actor",
                key_setting=SEALING_KEY_SETTING,
            )
        except SealingError as exc:
            raise self._error(f"{self.where}: auth.secretRef {self.ref!r}: {exc}") from None

    def _error(self, message: str) -> PermanentModelError:
        return PermanentModelError(message, provider=self.provider)


def masked(error: Exception, key: str) -> Exception:
    """`error` with every occurrence of `key` in its message masked (a vendor may echo the key
    it was sent, and the message reaches events, the ledger and logs)."""
    error.args = tuple(
        arg.replace(key, MASK) if isinstance(arg, str) else arg for arg in error.args
    )
    return error
