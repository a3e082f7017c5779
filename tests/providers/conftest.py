from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.fake_http import FakeHTTPServer


@pytest.fixture
def fake_server() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer().start()
    try:
        yield server
    finally:
        server.stop()
