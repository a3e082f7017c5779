"""What the providers read from a `ModelEndpoint` manifest, as a structural type.

`manifests.models.ModelEndpoint` satisfies it; tests and tools can pass any object of this shape.
The variable an endpoint names as `api_key_env` is checked by `check_secret_env`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, Protocol

from actors.providers.errors import PermanentModelError


class EndpointMetadata(Protocol):
    @property
    def name(self) -> str: ...


class EndpointAuth(Protocol):
    @property
    def secret_ref(self) -> str: ...


class EndpointSpec(Protocol):
    @property
    def provider(self) -> str: ...

    @property
    def base_url(self) -> str | None: ...

    @property
    def api_key_env(self) -> str | None: ...

    @property
    def default_model(self) -> str | None: ...

    @property
    def options(self) -> Mapping[str, Any]: ...

    @property
    def auth(self) -> EndpointAuth | None: ...


class Endpoint(Protocol):
    @property
    def metadata(self) -> EndpointMetadata: ...

    @property
    def spec(self) -> EndpointSpec: ...


SECRET_ENV_SETTING = "PODIUM_ACTOR_ALLOWED_SECRET_ENV"
"""The operator's allow-list of the variables an endpoint may name as `api_key_env`."""


def check_secret_env(variable: str, allowed: Sequence[str], *, where: str) -> str:
    """`variable` when a manifest may read it: never a `PODIUM_*` variable (the services' own
    settings, such as the policy signing key), and only names matching the operator's allow-list
    (exact names or `fnmatch` patterns). Raises `PermanentModelError` naming the variable."""
    if variable.upper().startswith("PODIUM_"):
        raise PermanentModelError(
            f"{where}: api_key_env {variable} is refused: PODIUM_* variables are Podium's own "
            f"settings and a manifest can never read them; put the key in a variable of its own "
            f"and add that name to {SECRET_ENV_SETTING}"
        )
    if not any(fnmatchcase(variable, pattern) for pattern in allowed):
        listed = ", ".join(allowed) or "nothing"
        raise PermanentModelError(
            f"{where}: api_key_env {variable} is not allowed by {SECRET_ENV_SETTING} "
            f"(it allows {listed}); the operator adds the name (or a pattern) to that setting"
        )
    return variable
