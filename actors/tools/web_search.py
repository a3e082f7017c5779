"""The built-in `web-search`: a query in, top results (title, url, snippet) out, from a backend.

The backend is pluggable (`SearchBackend`). The default, `CorpusSearchBackend`, searches a small
bundled offline corpus (`actors/tools/data/search_corpus.json`, documents about agent governance,
orchestration, cost control, approvals and audit) by keyword scoring, so demos need no network.
Another backend is chosen with `search_backend_from_reference("package.module:factory")`, where
`factory()` returns a `SearchBackend`; the actor's settings pass that reference (for example from an
environment variable of its own settings class) to `ToolRegistry(search_backend=...)`."""

from __future__ import annotations

import importlib
import json
import math
import re
from collections import Counter
from importlib import resources
from typing import Any, Protocol

from msgspec import Struct

from actors.tools.base import ToolInvocation, ToolResult

NAME = "web-search"
DESCRIPTION = "Search the web and return the most relevant results (title, url, snippet)."
DEFAULT_RESULTS = 5
MAX_RESULTS = 10
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 500},
        "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS},
    },
    "required": ["query"],
}
SNIPPET_CHARS = 240

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by for from how in is it of on or that the this to what when with"
    " which who why".split()
)


class SearchResult(Struct, frozen=True, kw_only=True):
    title: str
    url: str
    snippet: str


class SearchBackend(Protocol):
    async def search(self, query: str, limit: int) -> list[SearchResult]: ...


class Document(Struct, frozen=True, kw_only=True):
    title: str
    url: str
    text: str


def _terms(text: str) -> list[str]:
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOP)
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words]


class CorpusSearchBackend:
    """Keyword scoring (tf-idf, title words count double) over a list of documents."""

    def __init__(self, documents: list[Document]) -> None:
        self._documents = documents
        self._counts = [Counter(_terms(d.title) * 2 + _terms(d.text)) for d in documents]
        frequency: Counter[str] = Counter()
        for counts in self._counts:
            frequency.update(counts.keys())
        total = max(1, len(documents))
        self._idf = {term: math.log(1 + total / n) for term, n in frequency.items()}

    @classmethod
    def bundled(cls) -> CorpusSearchBackend:
        raw = resources.files("actors.tools").joinpath("data/search_corpus.json").read_bytes()
        return cls([Document(**item) for item in json.loads(raw)])

    async def search(self, query: str, limit: int) -> list[SearchResult]:
        terms = set(_terms(query))
        scored: list[tuple[float, int]] = []
        for index, counts in enumerate(self._counts):
            score = sum((1 + math.log(counts[t])) * self._idf[t] for t in terms if counts[t])
            if score > 0:
                scored.append((score, index))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [self._result(self._documents[i]) for _, i in scored[:limit]]

    @staticmethod
    def _result(document: Document) -> SearchResult:
        snippet = document.text
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " ..."
        return SearchResult(title=document.title, url=document.url, snippet=snippet)


def search_backend_from_reference(reference: str | None) -> SearchBackend:
    """`None` or `"corpus"`: the bundled corpus; `"module:factory"`: that module's `factory()`."""
    if reference in (None, "", "corpus"):
        return CorpusSearchBackend.bundled()
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        raise ValueError(f"search backend {reference!r}: write it as package.module:factory")
    factory = getattr(importlib.import_module(module_name), attribute)
    backend: SearchBackend = factory()
    return backend


def format_results(results: list[SearchResult]) -> str:
    if not results:
        return "No results."
    lines: list[str] = []
    for number, result in enumerate(results, 1):
        lines.append(f"{number}. {result.title} ({result.url})\n   {result.snippet}")
    return "\n".join(lines)


class WebSearchExecutor:
    """Implements `ToolExecutor` for `web-search`."""

    def __init__(self, backend: SearchBackend | None = None) -> None:
        self.backend = backend or CorpusSearchBackend.bundled()

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        query = invocation.arguments.get("query")
        limit = invocation.arguments.get("max_results", DEFAULT_RESULTS)
        if not isinstance(query, str) or not query.strip():
            return ToolResult(ok=False, content="web-search needs a query", error="empty query")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
            limit = DEFAULT_RESULTS
        try:
            results = await self.backend.search(query, limit)
        except Exception as exc:
            return ToolResult(
                ok=False,
                content="web-search is unavailable right now",
                error=f"{type(exc).__name__}: {exc}",
            )
        return ToolResult(ok=True, content=format_results(results))

    async def aclose(self) -> None:
        return None
