"""`make_provider`: the one place that turns a `ModelEndpoint` manifest into a `ModelProvider`."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from actors.providers.anthropic_messages import AnthropicProvider
from actors.providers.base import ModelProvider
from actors.providers.endpoint import Endpoint, check_secret_env
from actors.providers.errors import PermanentModelError
from actors.providers.mock import MockProvider
from actors.providers.openai_chat import OpenAIChatProvider
from actors.settings import DEFAULT_ALLOWED_SECRET_ENV
from manifests.models import MockOptions

PROVIDERS = ("openai", "anthropic", "openai-compatible", "mock")


def make_provider(
    endpoint: Endpoint, *, allowed_secret_env: Sequence[str] = DEFAULT_ALLOWED_SECRET_ENV
) -> ModelProvider:
    """A provider for the endpoint. Nothing is contacted and no key is read here: a missing API key
    surfaces as `PermanentModelError` (naming the variable) on the first call. An `api_key_env`
    that is a `PODIUM_*` variable or is not in `allowed_secret_env` (the actor's
    `PODIUM_ACTOR_ALLOWED_SECRET_ENV`) raises `PermanentModelError` here. An openai-compatible
    endpoint that names no variable gets no key (not the vendor's `OPENAI_API_KEY`)."""
    spec = endpoint.spec
    where = f"ModelEndpoint/{endpoint.metadata.name}"
    if spec.api_key_env:
        check_secret_env(spec.api_key_env, allowed_secret_env, where=where)
    options = dict(spec.options or {})
    base_url = str(spec.base_url) if spec.base_url else None
    if spec.provider == "mock":
        try:
            script = MockOptions.model_validate(options).script
        except ValidationError as exc:
            raise PermanentModelError(f"{where}: {exc}") from None
        return MockProvider(script=script, default_model=spec.default_model or "mock-1")
    if spec.provider == "openai":
        return OpenAIChatProvider(
            name="openai",
            base_url=base_url,
            api_key_env=spec.api_key_env or "OPENAI_API_KEY",
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
            api_key_env=spec.api_key_env or "",
            api_key_required=bool(spec.api_key_env),
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    if spec.provider == "anthropic":
        return AnthropicProvider(
            base_url=base_url,
            api_key_env=spec.api_key_env or "ANTHROPIC_API_KEY",
            default_model=spec.default_model,
            options=options,
            where=where,
        )
    raise PermanentModelError(
        f"{where}: unknown provider {spec.provider!r}; use one of {', '.join(PROVIDERS)}"
    )
