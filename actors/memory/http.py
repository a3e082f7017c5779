"""`provider: http`: Orloj's adapter contract. `POST /put {key, value}`, `/get {key}` ->
`{found, key, value}`, `/search {query, top_k}` -> `{results: [{key, value, score}]}`, `/list
{prefix}` -> `{entries: [...]}`, `GET /ping`; JSON both ways, the Secret's value as
`Authorization: Bearer`, errors as 4xx/5xx with an optional `{"error": "..."}`.

A non-2xx answer is a permanent error naming the path and status (5xx and transport failures
are transient); redirects are not followed, so the token goes to the endpoint only."""

from __future__ import annotations

from typing import Any

import httpx

from actors.memory.base import MemoryEntry, MemoryStoreError
from podium.core.errors import TransientError

TIMEOUT_S = 30.0
"""Orloj's client timeout."""
MAX_ERROR_CHARS = 300


class HttpMemoryStore:
    """Implements `MemoryStore` over an adapter at `endpoint`."""

    def __init__(
        self, *, memory: str, endpoint: str, token: str | None = None, timeout_s: float = TIMEOUT_S
    ) -> None:
        self._memory = memory
        self._endpoint = endpoint.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._token = token
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s, follow_redirects=False)

    async def put(self, key: str, value: str, metadata: dict[str, Any]) -> None:
        # Orloj's contract carries no metadata: the adapter stores key and value only.
        await self._post("/put", {"key": key, "value": value})

    async def get(self, key: str) -> MemoryEntry | None:
        body = await self._post("/get", {"key": key})
        if not body.get("found"):
            return None
        return MemoryEntry(key=str(body.get("key") or key), value=_text(body.get("value")))

    async def search(self, query: str, top_k: int) -> list[MemoryEntry]:
        body = await self._post("/search", {"query": query, "top_k": top_k})
        return [_entry(item, scored=True) for item in _items(body, "results")][:top_k]

    async def list(self, prefix: str, limit: int) -> list[MemoryEntry]:
        body = await self._post("/list", {"prefix": prefix})
        return [_entry(item, scored=False) for item in _items(body, "entries")][:limit]

    async def ping(self) -> None:
        await self._send("GET", "/ping", None)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("POST", path, body)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        where = f"Memory/{self._memory}: http {path}"
        try:
            response = await self._client.request(method, self._endpoint + path, json=body)
        except httpx.HTTPError as exc:
            raise TransientError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            message = self._mask(_error_text(response))
            error = f"{where}: status {response.status_code}: {message}"
            if response.status_code >= 500:
                raise TransientError(error)
            raise MemoryStoreError(error)
        try:
            parsed = response.json()
        except ValueError as exc:
            raise MemoryStoreError(f"{where}: invalid response: not JSON") from exc
        if not isinstance(parsed, dict):
            raise MemoryStoreError(f"{where}: invalid response: not a JSON object")
        return parsed

    def _mask(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _items(body: dict[str, Any], field: str) -> list[dict[str, Any]]:
    items = body.get(field) or []
    if not isinstance(items, list):
        raise MemoryStoreError(f"invalid response: `{field}` is not a list")
    return [item for item in items if isinstance(item, dict) and "key" in item]


def _entry(item: dict[str, Any], *, scored: bool) -> MemoryEntry:
    score = item.get("score")
    return MemoryEntry(
        key=str(item["key"]),
        value=_text(item.get("value")),
        score=float(score) if scored and isinstance(score, int | float) else None,
    )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]:
        return str(body["error"])[:MAX_ERROR_CHARS]
    return response.text.strip()[:MAX_ERROR_CHARS]
