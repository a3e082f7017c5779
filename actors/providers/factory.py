"""`make_provider`: the one place that turns a `ModelEndpoint` manifest into a `ModelProvider`."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import ValidationError

from actors.providers.anthropic_messages import AnthropicProvider
from actors.providers.azure_openai import AzureOpenAIProvider
from actors.providers.base import ModelProvider
from actors.providers.bedrock import AwsKeys, BedrockProvider
from actors.providers.endpoint import Endpoint, check_secret_env
from actors.providers.errors import PermanentModelError
from actors.providers.keys import ApiKey, EnvKey, NoKey, SealedKey
from actors.providers.mock import MockProvider
from actors.providers.ollama import OllamaProvider
from actors.providers.openai_chat import OpenAIChatProvider
from actors.settings import DEFAULT_ALLOWED_SECRET_ENV
from manifests.models import BEDROCK_KEYS, MockOptions, Secret

PROVIDERS = (
    "openai",
    "anthropic",
    "azure-openai",
    "ollama",
    "openai-compatible",
    "bedrock",
    "mock",
)


def make_provider(
    endpoint: Endpoint,
    secret: Secret | None = None,
    *,
    allowed_secret_env: Sequence[str] = DEFAULT_ALLOWED_SECRET_ENV,
    sealing_key: X25519PrivateKey | None = None,
) -> ModelProvider:
    """A provider for the endpoint. Nothing is contacted and no key is read here: a key that
    cannot be had surfaces as `PermanentModelError` on the first call. The key comes from
    `auth.secretRef` (`secret` is the catalog's Secret it names, None when it is not applied;
    `sealing_key` opens it), or from `api_key_env`: a `PODIUM_*` variable or one not in
    `allowed_secret_env` (the actor's `PODIUM_ACTOR_ALLOWED_SECRET_ENV`) raises
    `PermanentModelError` here. An openai-compatible endpoint that names neither gets no key
    (not the vendor's `OPENAI_API_KEY`)."""
    spec = endpoint.spec
    where = f"ModelEndpoint/{endpoint.metadata.name}"
    if spec.api_key_env:
        check_secret_env(spec.api_key_env, allowed_secret_env, where=where)
    options = dict(spec.options or {})
    base_url = str(spec.base_url) if spec.base_url else None

    def key(default_env: str | None) -> ApiKey | None:
        if spec.auth is not None:
            return SealedKey(spec.provider, where, spec.auth.secret_ref, secret, sealing_key)
        variable = spec.api_key_env or default_env
        return EnvKey(spec.provider, variable) if variable else None

    if spec.provider == "mock":
        try:
            script = MockOptions.model_validate(options).script
        except ValidationError as exc:
            raise PermanentModelError(f"{where}: {exc}") from None
        # The mock sends no key; a secretRef is still opened, so a broken one fails offline too.
        return MockProvider(
            script=script,
            default_model=spec.default_model or "mock-1",
            api_key=key(None) if spec.auth is not None else None,
        )
    if spec.provider == "openai":
        return OpenAIChatProvider(
            name="openai",
            base_url=base_url,
            api_key=key("OPENAI_API_KEY"),
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    if spec.provider == "openai-compatible":
        if not base_url:
            raise PermanentModelError(
                f"{where}: provider openai-compatible needs spec.base_url "
                "(for example http://127.0.0.1:8000/v1)"
            )
        return OpenAIChatProvider(
            name="openai-compatible",
            base_url=base_url,
            api_key=key(None) or NoKey(),
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    if spec.provider == "anthropic":
        return AnthropicProvider(
            base_url=base_url,
            api_key=key("ANTHROPIC_API_KEY"),
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    if spec.provider == "azure-openai":
        if not base_url:
            raise PermanentModelError(
                f"{where}: provider azure-openai needs spec.base_url "
                "(https://<resource>.openai.azure.com)"
            )
        return AzureOpenAIProvider(
            base_url=base_url,
            api_key=key("AZURE_OPENAI_API_KEY"),
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    if spec.provider == "ollama":
        return OllamaProvider(
            base_url=base_url,
            api_key=key(None),
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    if spec.provider == "bedrock":
        return BedrockProvider(
            keys=_aws_keys(endpoint, secret, sealing_key, where),
            base_url=base_url,
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    raise PermanentModelError(
        f"{where}: unknown provider {spec.provider!r}; use one of {', '.join(PROVIDERS)}"
    )


def _aws_keys(
    endpoint: Endpoint, secret: Secret | None, sealing_key: X25519PrivateKey | None, where: str
) -> AwsKeys:
    """The Secret's `access_key_id`, `secret_access_key` and (when it has one) `session_token`."""
    auth = endpoint.spec.auth
    if auth is None:
        raise PermanentModelError(
            f"{where}: provider bedrock needs auth.secretRef naming a Secret with "
            f"{' and '.join(BEDROCK_KEYS)}",
            provider="bedrock",
        )
    name = auth.secret_ref.strip()

    def sealed(key: str) -> SealedKey:
        return SealedKey("bedrock", where, f"{name}:{key}", secret, sealing_key)

    held: set[str] = set()
    if secret is not None:
        held = {*secret.spec.sealed_data, *secret.spec.data, *secret.spec.string_data}
    token = sealed("session_token") if "session_token" in held else None
    return AwsKeys(sealed(BEDROCK_KEYS[0]), sealed(BEDROCK_KEYS[1]), token)
