"""The command line's client of the ledger API (`podium logs`, `spend`, `trace`, `get task`).

Where the API is: `PODIUM_API_URL`, else the URL `podium ledger` recorded in the local stack's
state file. The token: `PODIUM_API_TOKEN`, else `.podium/api-token` (`podium token create
--save`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from podium.errors import PermanentError, TransientError
from podium.stack.state import load_state, stack_dir

URL_ENV = "PODIUM_API_URL"
TOKEN_ENV = "PODIUM_API_TOKEN"


def token_file() -> Path:
    return stack_dir() / "api-token"


def save_token(token: str) -> Path:
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)
    return path


def resolve() -> tuple[str, str]:
    url = os.environ.get(URL_ENV) or load_state().api_url
    if not url:
        raise PermanentError(
            f"the ledger API is not known: set {URL_ENV}, or start `podium ledger` on the "
            "local stack (it records its URL)"
        )
    token = os.environ.get(TOKEN_ENV, "")
    if not token and token_file().exists():
        token = token_file().read_text().strip()
    if not token:
        raise PermanentError(
            f"no API token: set {TOKEN_ENV}, or run `podium token create --scope audit:read "
            "--scope spend:read --save`"
        )
    return url.rstrip("/"), token


class LedgerClient:
    def __init__(self, url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    @classmethod
    def from_environment(cls) -> LedgerClient:
        url, token = resolve()
        return cls(url, token)

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
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self.get(path, **params, cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

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
