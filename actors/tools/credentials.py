"""What an http tool's `auth` sends (Orloj's profiles), from the sealed Secret it names.

The Secret is opened with the actor's sealing key at every call, so a rotated Secret takes effect
at the next call of a registry built from the new catalog. A Secret that is not applied, lacks
the key or cannot be opened fails the call with a permanent `ToolFailure` that names the tool,
the Secret and the fix, never the value, before any request. `oauth2_client_credentials`
exchanges the Secret's `client_id` and `client_secret` at `tokenURL` and caches the token until
shortly before its `expires_in` (`OAuth2Tokens`, shared by the registries of an actor)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.settings import SEALING_KEY_SETTING
from actors.tools._attempts import RetryableToolFailure, ToolFailure
from actors.tools.base import ToolResult
from manifests.models import Secret, ToolAuth
from manifests.sealing import SealingError, open_text

MASK = "***"
EXPIRY_MARGIN_S = 30.0
"""A cached token is dropped this long before it expires (Orloj's margin)."""
DEFAULT_EXPIRES_IN_S = 3600.0
"""The life of a token whose response has no `expires_in` (Orloj's default)."""
MAX_TOKEN_RESPONSE = 1024 * 1024


TokenKey = tuple[str, str, str]
"""(tokenURL, client, scopes)."""


@dataclass
class OAuth2Tokens:
    """Access tokens by `TokenKey`, until shortly before they expire; one exchange at a time per
    key, so that concurrent calls share one token."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[TokenKey, tuple[str, float]] = field(default_factory=dict)
    _locks: dict[TokenKey, asyncio.Lock] = field(default_factory=dict)

    async def token(
        self, key: TokenKey, exchange: Callable[[], Awaitable[tuple[str, float]]]
    ) -> str:
        """The cached token of `key`, or a new one from `exchange()` -> (token, expires_in)."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            found = self._tokens.get(key)
            if found is not None and self.clock() < found[1]:
                return found[0]
            token, expires_in_s = await exchange()
            life = (
                expires_in_s - EXPIRY_MARGIN_S if expires_in_s > EXPIRY_MARGIN_S else expires_in_s
            )
            self._tokens[key] = (token, self.clock() + max(1.0, life))
            return token

    def evict(self, key: TokenKey) -> None:
        self._tokens.pop(key, None)


class ToolCredentials:
    """The auth headers of one http tool; `masks` are the values its errors must not show."""

    def __init__(
        self,
        *,
        tool: str,
        auth: ToolAuth,
        secret: Secret | None,
        sealing_key: X25519PrivateKey | None,
        tokens: OAuth2Tokens,
    ) -> None:
        self.tool = tool
        self.auth = auth
        self._secret = secret
        self._sealing_key = sealing_key
        self._tokens = tokens
        self.masks: set[str] = set()
        self._token_key: TokenKey | None = None

    async def headers(self, client: httpx.AsyncClient, budget_s: float) -> dict[str, str]:
        """The headers to send; raises `ToolFailure` (permanent) or `RetryableToolFailure`."""
        auth = self.auth
        if auth.profile == "oauth2_client_credentials":
            return {"Authorization": f"Bearer {await self._token(client, budget_s)}"}
        value = self._open(auth.secret_keys[0])
        if auth.profile == "api_key_header":
            assert auth.header_name is not None  # the model requires it
            return {auth.header_name: value}
        if auth.profile == "basic":
            if ":" not in value:
                raise self._failure(
                    "the value of a basic Secret is `user:password` (Orloj's convention); "
                    "apply it again in that form"
                )
            encoded = base64.b64encode(value.encode()).decode()
            self.masks.add(encoded)
            return {"Authorization": f"Basic {encoded}"}
        return {"Authorization": f"Bearer {value}"}

    def rejected(self) -> None:
        """The tool answered 401: the next call exchanges a new token (as Orloj does)."""
        if self._token_key is not None:
            self._tokens.evict(self._token_key)

    def mask(self, text: str) -> str:
        """Every value in `masks` replaced, and the head of one the text ends with: an answer
        cut at its cap (or an error cut to its first characters) may end inside a value."""
        for value in sorted(self.masks, key=len, reverse=True):
            text = text.replace(value, MASK)
        return _mask_cut_tail(text, self.masks)

    def _open(self, key: str) -> str:
        try:
            text = open_text(
                self._secret,
                self.auth.secret_name,
                key,
                self._sealing_key,
                holder="this actor",
                key_setting=SEALING_KEY_SETTING,
            )
        except SealingError as exc:
            raise self._failure(str(exc)) from None
        self.masks.add(text)
        return text

    async def _token(self, client: httpx.AsyncClient, budget_s: float) -> str:
        client_id, client_secret = (self._open(key) for key in self.auth.secret_keys)
        url = self.auth.token_url or ""
        scope = " ".join(self.auth.scopes)
        # The secret's digest is in the key, so a rotated client secret gets a new token.
        digest = hashlib.sha256(client_secret.encode()).hexdigest()
        key = self._token_key = (url, f"{client_id}\0{digest}", scope)
        token = await self._tokens.token(
            key, lambda: self._exchange(client, url, client_id, client_secret, scope, budget_s)
        )
        self.masks.add(token)
        return token

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        budget_s: float,
    ) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            form["scope"] = scope
        where = f"the token endpoint {url}"
        try:
            response = await client.post(url, data=form, timeout=budget_s)
        except httpx.TimeoutException as exc:
            raise RetryableToolFailure(
                f"tool {self.tool} timed out", f"Tool/{self.tool}: {where} timed out"
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableToolFailure(
                f"tool {self.tool} is unreachable",
                f"Tool/{self.tool}: {where} is unreachable: {type(exc).__name__}",
            ) from exc
        body = response.content[:MAX_TOKEN_RESPONSE]
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise RetryableToolFailure(
                f"tool {self.tool} failed temporarily",
                f"Tool/{self.tool}: {where} answered HTTP {status}",
            )
        if not 200 <= status < 300:
            text = self.mask(body[:300].decode("utf-8", "replace"))
            raise self._failure(
                f"{where} answered HTTP {status} ({text}); check the client_id and "
                f"client_secret of Secret/{self.auth.secret_name} and the scopes"
            )
        try:
            answer = json.loads(body)
            token = answer["access_token"]
            expires_in = float(answer.get("expires_in") or DEFAULT_EXPIRES_IN_S)
        except (ValueError, KeyError, TypeError):
            raise self._failure(
                f"{where} did not answer JSON with an access_token (HTTP {status})"
            ) from None
        if not isinstance(token, str) or not token or not token.isprintable():
            raise self._failure(f"{where} answered an access_token that is not a header value")
        return token, expires_in if expires_in > 0 else DEFAULT_EXPIRES_IN_S

    def _failure(self, reason: str) -> ToolFailure:
        detail = f"Tool/{self.tool}: auth.secretRef {self.auth.secret_ref!r}: {reason}"
        return ToolFailure(
            f"tool {self.tool} failed: its credentials cannot be had (permanent; do not retry)",
            detail,
        )


MIN_CUT_HEAD = 4
"""A value's head this long or longer at the end of a text is masked: shorter ones are too
likely to be the text's own ending and tell too little of the value."""


def _mask_cut_tail(text: str, values: set[str]) -> str:
    """`text` with its longest ending that is a head of one of `values` masked."""
    longest = 0
    for value in values:
        for size in range(min(len(value) - 1, len(text)), MIN_CUT_HEAD - 1, -1):
            if size > longest and text.endswith(value[:size]):
                longest = size
                break
    return text[:-longest] + MASK if longest else text


def masked(result: ToolResult, credentials: ToolCredentials | None) -> ToolResult:
    """`result` with the values `credentials` sent masked in its content and error."""
    if credentials is None or not credentials.masks:
        return result
    return ToolResult(
        ok=result.ok,
        content=credentials.mask(result.content),
        error=credentials.mask(result.error),
    )
