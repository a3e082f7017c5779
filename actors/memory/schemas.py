"""The built-in memory tools as the model sees them (Orloj's names, descriptions and schemas;
`memory.write` also takes optional `metadata`, `memory.ingest` Orloj's `chunk_size` and
`overlap`), and Orloj's chunking for `memory.ingest`."""

from __future__ import annotations

from typing import Any

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_OVERLAP = 200
MAX_VALUE_CHARS = 100_000
"""The largest value `memory.write` stores (the model is told when it writes more)."""

_STRING: dict[str, Any] = {"type": "string"}

TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "memory.read": (
        "Read a value from memory by key.",
        {
            "type": "object",
            "properties": {
                "key": {**_STRING, "minLength": 1, "description": "The exact memory key to read."}
            },
            "required": ["key"],
        },
    ),
    "memory.write": (
        "Write a key-value pair into memory.",
        {
            "type": "object",
            "properties": {
                "key": {**_STRING, "minLength": 1, "description": "The memory key to write."},
                "value": {
                    **_STRING,
                    "maxLength": MAX_VALUE_CHARS,
                    "description": "The value to store at the key.",
                },
                "metadata": {
                    "type": "object",
                    "additionalProperties": _STRING,
                    "description": "Optional labels kept with the entry.",
                },
            },
            "required": ["key", "value"],
        },
    ),
    "memory.search": (
        "Search memory entries by query text.",
        {
            "type": "object",
            "properties": {
                "query": {**_STRING, "minLength": 1, "description": "The search query."},
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "description": "Maximum number of results to return.",
                },
            },
            "required": ["query"],
        },
    ),
    "memory.list": (
        "List memory entries, optionally filtered by key prefix.",
        {
            "type": "object",
            "properties": {"prefix": {**_STRING, "description": "Optional key prefix filter."}},
        },
    ),
    "memory.ingest": (
        "Ingest a source document into memory by chunking and storing it.",
        {
            "type": "object",
            "properties": {
                "source": {
                    **_STRING,
                    "minLength": 1,
                    "description": "Short source label for the ingested content.",
                },
                "content": {
                    **_STRING,
                    "minLength": 1,
                    "description": "Full text content to ingest into memory.",
                },
                "chunk_size": {"type": "integer", "minimum": 1, "maximum": MAX_VALUE_CHARS},
                "overlap": {"type": "integer", "minimum": 0},
            },
            "required": ["source", "content"],
        },
    ),
}


def chunks(
    text: str, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[str]:
    """Orloj's `ChunkText`: windows of `chunk_size` characters, each `overlap` into the last
    (an overlap not below the size becomes a fifth of it)."""
    if chunk_size <= 0:
        chunk_size = DEFAULT_CHUNK_SIZE
    if overlap < 0:
        overlap = DEFAULT_OVERLAP
    if overlap >= chunk_size:
        overlap = chunk_size // 5
    step = max(1, chunk_size - overlap)
    out: list[str] = []
    offset = 0
    while offset < len(text):
        end = min(len(text), offset + chunk_size)
        out.append(text[offset:end])
        if end == len(text):
            break
        offset += step
    return out
