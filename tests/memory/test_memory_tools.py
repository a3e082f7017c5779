"""The built-in memory tools on the in-memory and http stores, without a stack: Orloj's results,
the operations `allow` grants, argument checks, Orloj's http contract against a local adapter,
and the Secret that is its bearer token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.memory.http import HttpMemoryStore
from actors.memory.schemas import chunks
from actors.memory.stores import MemoryConfig, MemoryStores
from actors.memory.tools import MemoryTools
from actors.tools.base import ToolInvocation
from manifests.catalog import Catalog
from manifests.loader import load_paths
from manifests.models import Secret
from manifests.sealing import new_private_key, sealed_document
from tests.memory.fake_adapter import FakeMemoryAdapter

MANIFESTS = """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: mock}
spec: {provider: mock, default_model: mock-1}
---
apiVersion: orloj.dev/v1
kind: Memory
metadata: {name: notes}
spec: {type: kv}
---
apiVersion: orloj.dev/v1
kind: Memory
metadata: {name: remote}
spec:
  provider: http
  endpoint: %(adapter)s
  auth: {secretRef: adapter-key}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: adapter-key}
spec:
  stringData: {value: tok-8Hq2}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: scribe}
spec:
  model_ref: mock
  memory: {ref: notes, allow: [read, write, search, list, ingest]}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: reader}
spec:
  model_ref: mock
  memory: {ref: notes, allow: [read]}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: remote-scribe}
spec:
  model_ref: mock
  memory: {ref: remote, allow: [write, read, search, list]}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: plain}
spec: {model_ref: mock}
"""

KEY = new_private_key()


@pytest.fixture
def adapter() -> Iterator[FakeMemoryAdapter]:
    server = FakeMemoryAdapter(token="tok-8Hq2").start()
    try:
        yield server
    finally:
        server.stop()


def catalog(tmp_path: Path, adapter_url: str = "http://127.0.0.1:9") -> Catalog:
    file = tmp_path / "m.yaml"
    file.write_text(MANIFESTS % {"adapter": adapter_url})
    result = load_paths([file])
    assert not result.errors, [str(e) for e in result.errors]
    assert result.catalog is not None
    loaded = result.catalog
    # As the actors read it from the manifests topic: the Secret sealed to their key.
    plain = loaded.secrets["adapter-key"]
    raw = plain.model_dump(mode="json", by_alias=True, exclude_none=True)
    sealed = Secret.model_validate(sealed_document(raw, plain, KEY.public_key()))
    resources = [r for r in loaded.resources() if r.key != plain.key] + [sealed]
    return Catalog.build(resources)


def call(agent: str, tool: str, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool=tool, arguments=dict(arguments), idempotency_key="t1/s1/0", timeout_s=5, agent=agent
    )


@pytest.fixture
async def tools() -> AsyncIterator[MemoryTools]:
    made = MemoryTools(MemoryStores(MemoryConfig(sealing_key=KEY)))
    yield made
    await made.aclose()


async def run(tools: MemoryTools, cat: Catalog, agent: str, tool: str, **args: object) -> Any:
    result = await tools.invoke(cat, call(agent, tool, **args))
    assert result.ok, result
    return json.loads(result.content)


async def test_write_read_search_list_and_ingest_answer_as_orloj(
    tools: MemoryTools, tmp_path: Path
) -> None:
    cat = catalog(tmp_path)
    assert await run(
        tools, cat, "scribe", "memory.write", key="research/q3", value="Revenue up"
    ) == {
        "status": "ok",
        "key": "research/q3",
    }
    assert await run(tools, cat, "scribe", "memory.read", key="research/q3") == {
        "found": True,
        "key": "research/q3",
        "value": "Revenue up",
    }
    assert await run(tools, cat, "scribe", "memory.read", key="nope") == {
        "found": False,
        "key": "nope",
    }
    await run(tools, cat, "scribe", "memory.write", key="other", value="unrelated")
    assert await run(tools, cat, "scribe", "memory.search", query="REVENUE") == {
        "results": [{"key": "research/q3", "value": "Revenue up", "score": 1.0}],
        "count": 1,
    }
    assert await run(tools, cat, "scribe", "memory.list", prefix="research/") == {
        "entries": [{"key": "research/q3", "value": "Revenue up"}],
        "count": 1,
    }
    ingested = await run(
        tools,
        cat,
        "scribe",
        "memory.ingest",
        source="doc",
        content="abcdefghij",
        chunk_size=4,
        overlap=1,
    )
    assert ingested == {"status": "ok", "source": "doc", "chunks_stored": 3}
    listed = await run(tools, cat, "scribe", "memory.list", prefix="doc/")
    assert [e["value"] for e in listed["entries"]] == ["abcd", "defg", "ghij"]
    # Another agent on the same Memory reads what scribe wrote (one store per actor process).
    assert await run(tools, cat, "reader", "memory.read", key="research/q3") == {
        "found": True,
        "key": "research/q3",
        "value": "Revenue up",
    }


async def test_in_memory_entries_outlive_a_new_catalog_but_not_a_changed_memory(
    tools: MemoryTools, tmp_path: Path
) -> None:
    cat = catalog(tmp_path)
    await run(tools, cat, "scribe", "memory.write", key="k", value="v")
    again = Catalog.build(cat.resources())
    assert (await run(tools, again, "scribe", "memory.read", key="k"))["found"] is True
    resources = [
        r.model_copy(update={"spec": r.spec.model_copy(update={"type": "vector"})})
        if r.key == "Memory/notes"
        else r
        for r in cat.resources()
    ]
    changed = Catalog.build(resources)
    assert (await run(tools, changed, "scribe", "memory.read", key="k"))["found"] is False


async def test_a_write_keeps_the_models_labels_and_who_wrote_it(
    tmp_path: Path,
) -> None:
    stores = MemoryStores()
    tools = MemoryTools(stores)
    cat = catalog(tmp_path)
    try:
        await run(tools, cat, "scribe", "memory.write", key="k", value="v", metadata={"t": "q3"})
        store = stores.store_for(cat, cat.memories["notes"])
        entry = await store.get("k")
    finally:
        await tools.aclose()
    assert entry is not None and entry.updated_at is not None
    assert entry.metadata == {"t": "q3", "agent": "scribe", "call": "t1/s1/0"}


async def test_an_operation_allow_does_not_grant_is_refused(
    tools: MemoryTools, tmp_path: Path
) -> None:
    cat = catalog(tmp_path)
    for agent, tool in [
        ("reader", "memory.write"),
        ("plain", "memory.read"),
        ("gone", "memory.read"),
    ]:
        result = await tools.invoke(cat, call(agent, tool, key="k", value="v"))
        assert not result.ok
        assert result.content.startswith(f"error: {tool} is not available to {agent}"), result


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("memory.write", {"key": "k"}, "'value' is a required property"),
        ("memory.write", {"key": "k", "value": "v", "ttl": 3}, "'ttl' was unexpected"),
        ("memory.search", {"query": "x", "top_k": 0}, "top_k: 0 is less than the minimum"),
        ("memory.read", {"key": ""}, "key: '' should be non-empty"),
        ("memory.read", {"key": "   "}, "memory.read: key is required"),
    ],
)
async def test_bad_arguments_are_refused_before_the_store(
    tools: MemoryTools, tmp_path: Path, tool: str, arguments: dict[str, object], expected: str
) -> None:
    result = await tools.invoke(catalog(tmp_path), call("scribe", tool, **arguments))
    assert not result.ok and expected in result.content, result


def test_chunks_are_orlojs() -> None:
    assert chunks("abcdefghij", 4, 1) == ["abcd", "defg", "ghij"]
    assert chunks("abc", 4, 1) == ["abc"]
    assert chunks("", 4, 1) == []
    assert chunks("abcdefghij", 5, 9) == ["abcde", "efghi", "ij"]  # overlap >= size: a fifth
    assert len(chunks("x" * 2500)) == 3  # 1000 characters, 200 of overlap


async def test_the_http_memory_speaks_orlojs_contract_with_the_secret_as_bearer(
    tools: MemoryTools, tmp_path: Path, adapter: FakeMemoryAdapter
) -> None:
    cat = catalog(tmp_path, adapter.url)
    agent = "remote-scribe"
    assert await run(tools, cat, agent, "memory.write", key="a/1", value="alpha beta") == {
        "status": "ok",
        "key": "a/1",
    }
    assert adapter.entries == {"a/1": "alpha beta"}
    assert (await run(tools, cat, agent, "memory.read", key="a/1"))["value"] == "alpha beta"
    assert await run(tools, cat, agent, "memory.search", query="beta", top_k=3) == {
        "results": [{"key": "a/1", "value": "alpha beta", "score": 0.5}],
        "count": 1,
    }
    assert (await run(tools, cat, agent, "memory.list", prefix="a/"))["count"] == 1
    sent = [(m, p, b) for m, p, _, b in adapter.requests]
    assert sent == [
        ("POST", "/put", {"key": "a/1", "value": "alpha beta"}),
        ("POST", "/get", {"key": "a/1"}),
        ("POST", "/search", {"query": "beta", "top_k": 3}),
        ("POST", "/list", {"prefix": "a/"}),
    ]
    assert {h["authorization"] for _, _, h, _ in adapter.requests} == {"Bearer tok-8Hq2"}


async def test_an_adapter_error_is_told_to_the_model_without_the_token(
    tools: MemoryTools, tmp_path: Path, adapter: FakeMemoryAdapter
) -> None:
    cat = catalog(tmp_path, adapter.url)
    adapter.fail_with = (400, {"error": "key too long for tok-8Hq2"})
    result = await tools.invoke(cat, call("remote-scribe", "memory.write", key="k", value="v"))
    assert not result.ok
    assert result.error == "Memory/remote: http /put: status 400: key too long for ***", result
    adapter.fail_with = (503, {"error": "down"})
    result = await tools.invoke(cat, call("remote-scribe", "memory.read", key="k"))
    assert not result.ok and result.content == "error: memory remote is unavailable", result


async def test_a_secret_the_actor_cannot_open_fails_the_call_and_sends_nothing(
    tmp_path: Path, adapter: FakeMemoryAdapter
) -> None:
    tools = MemoryTools(MemoryStores(MemoryConfig(sealing_key=new_private_key())))
    try:
        result = await tools.invoke(
            catalog(tmp_path, adapter.url), call("remote-scribe", "memory.read", key="k")
        )
    finally:
        await tools.aclose()
    assert not result.ok
    assert result.error.startswith(
        "Memory/remote: auth.secretRef 'adapter-key': Secret/adapter-key"
    ), result
    assert adapter.requests == []


async def test_the_http_store_pings() -> None:
    server = FakeMemoryAdapter().start()
    store = HttpMemoryStore(memory="m", endpoint=server.url + "/")
    try:
        await store.ping()
    finally:
        await store.aclose()
        server.stop()
    assert [(m, p) for m, p, _, _ in server.requests] == [("GET", "/ping")]
