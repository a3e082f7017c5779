"""What the providers read from a `ModelEndpoint` manifest, as a structural type.

`manifests.models.ModelEndpoint` satisfies it; tests and tools can pass any object of this shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class EndpointMetadata(Protocol):
    @property
    def name(self) -> str: ...


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


class Endpoint(Protocol):
    @property
    def metadata(self) -> EndpointMetadata: ...

    @property
    def spec(self) -> EndpointSpec: ...
