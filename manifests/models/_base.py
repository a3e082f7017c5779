"""What every resource kind shares: accepted versions, names, durations, the base models."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

API_VERSIONS = ("orloj.dev/v1", "podium.dev/v1")
"""The `apiVersion`s accepted; Orloj's is read as it is."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
"""A resource name: usable in a topic name (`podium.agent.<name>`)."""

DEFAULT_MAX_STEPS = 10
"""As in Orloj v0.3: an agent without `limits.max_steps` gets 10 model turns."""
DEFAULT_TIMEOUT_S = 120.0

Name = Annotated[str, Field(pattern=NAME_PATTERN)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> object:
    """`"60s"`, `"2m"`, `"1.5h"`, `"250ms"` or a number of seconds -> seconds (float).

    Anything else is returned unchanged so that the field's own type check reports it.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration; write it like 30s, 2m, 1h or 250ms")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


Seconds = Annotated[float, Field(gt=0, le=7 * 86400)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,
        str_strip_whitespace=False,
    )


class Metadata(_Model):
    name: Name
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ResourceBase(_Model):
    kind_name: ClassVar[str] = ""

    api_version: Literal["orloj.dev/v1", "podium.dev/v1"] = Field(alias="apiVersion")
    metadata: Metadata

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> str:
        """`Kind/name`: the key on the manifests topic."""
        return f"{self.kind_name}/{self.metadata.name}"
