"""Tools behind one Protocol: http, external, webhook-callback, grpc, wasm, python, and the
built-ins read-url and web-search."""

from actors.tools.base import ToolExecutor, ToolInvocation, ToolResult
from actors.tools.http_executor import IDEMPOTENCY_HEADER, HttpToolExecutor
from actors.tools.options import ToolOptions
from actors.tools.python_executor import PythonToolExecutor
from actors.tools.read_url import ReadUrlExecutor, html_to_text, is_public_address
from actors.tools.redaction import redact_arguments
from actors.tools.registry import ToolRegistry, UnknownToolError, UnsupportedToolError
from actors.tools.sandbox import PythonSandbox
from actors.tools.schema import ArgumentValidator, ToolSchemaError, closed_schema
from actors.tools.web_search import (
    CorpusSearchBackend,
    SearchBackend,
    SearchResult,
    WebSearchExecutor,
    search_backend_from_reference,
)

__all__ = [
    "IDEMPOTENCY_HEADER",
    "ArgumentValidator",
    "CorpusSearchBackend",
    "HttpToolExecutor",
    "PythonSandbox",
    "PythonToolExecutor",
    "ReadUrlExecutor",
    "SearchBackend",
    "SearchResult",
    "ToolExecutor",
    "ToolInvocation",
    "ToolOptions",
    "ToolRegistry",
    "ToolResult",
    "ToolSchemaError",
    "UnknownToolError",
    "UnsupportedToolError",
    "WebSearchExecutor",
    "closed_schema",
    "html_to_text",
    "is_public_address",
    "redact_arguments",
    "search_backend_from_reference",
]
