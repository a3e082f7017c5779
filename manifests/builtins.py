"""Tools every agent may name without a `Tool` manifest: the runtime implements them."""

from __future__ import annotations

BUILTIN_TOOLS: frozenset[str] = frozenset({"web-search", "read-url"})
"""`web-search` (query -> results) and `read-url` (url -> text), implemented by the runtime."""

DELEGATE_TOOL = "delegate"
"""Reserved: the tool a supervisor's model gets for `delegates_to`; no manifest may define it."""

RESERVED_TOOL_NAMES: frozenset[str] = frozenset({DELEGATE_TOOL})
