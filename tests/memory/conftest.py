"""The actor tests' `runtime` fixture, for the memory tests that run agents."""

from __future__ import annotations

from tests.actors.conftest import runtime  # noqa: F401  (the `runtime` fixture)
