"""A memory adapter speaking Orloj's `provider: http` contract, on 127.0.0.1, in a thread: a
dict of entries, substring search, the bearer token checked when one is set. It records what
it was sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeMemoryAdapter:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.entries: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        """(method, path, headers in lower case, JSON body or None)"""
        self.fail_with: tuple[int, Any] | None = None
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                adapter.requests.append((self.command, self.path, headers, body))
                if adapter.token and headers.get("authorization") != f"Bearer {adapter.token}":
                    return self._answer(401, {"error": "bad token"})
                if adapter.fail_with is not None:
                    return self._answer(*adapter.fail_with)
                status, answer = adapter.route(self.command, self.path, body or {})
                self._answer(status, answer)

            do_GET = _handle
            do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/ping":
            return 200, {"status": "ok"}
        if path == "/put":
            self.entries[body["key"]] = body["value"]
            return 200, {"status": "ok"}
        if path == "/get":
            key = body["key"]
            if key in self.entries:
                return 200, {"found": True, "key": key, "value": self.entries[key]}
            return 200, {"found": False, "key": key}
        if path == "/search":
            q = body["query"].lower()
            hits = [
                {"key": k, "value": v, "score": 0.5}
                for k, v in sorted(self.entries.items())
                if q in k.lower() or q in v.lower()
            ]
            return 200, {"results": hits[: body.get("top_k", 10)]}
        if path == "/list":
            prefix = body.get("prefix", "")
            listed = [{"key": k, "value": v} for k, v in sorted(self.entries.items())]
            return 200, {"entries": [e for e in listed if e["key"].startswith(prefix)]}
        return 404, {"error": f"no route {path}"}

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeMemoryAdapter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
