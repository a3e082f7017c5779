"""The command line's client of the ledger API (`podium logs`, `spend`, `trace`, `get task`).

Where the API is and which token to use is the composition root's business
(`podium.environment.ledger_client`).
"""

from __future__ import annotations

from typing import Any

import httpx

from podium.core.errors import PermanentError, TransientError


class LedgerClient:
    def __init__(self, url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=body or {})

    def pages(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paginated list."""
        items: list[Any] = self.all_pages(path, "items", **params)["items"]
        return items

    def all_pages(self, path: str, key: str, **params: Any) -> dict[str, Any]:
        """The first page, with `key` holding the items of every page (`groups` of spend)."""
        first: dict[str, Any] = self.get(path, **params)
        cursor = first.get("next_cursor")
        while cursor:
            page = self.get(path, **params, cursor=cursor)
            first[key].extend(page[key])
            cursor = page.get("next_cursor")
        first["next_cursor"] = None
        return first

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(
                f"the ledger API at {self._http.base_url} is unreachable: {exc}"
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise PermanentError(f"ledger API {response.status_code}: {detail}")
        return response.json()
