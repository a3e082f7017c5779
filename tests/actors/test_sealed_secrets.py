"""A Secret applied with `auth.secretRef` on the real stack: no plaintext byte of it reaches the
manifests topic, the actor opens it and sends it as the bearer token, and a Secret it cannot
open fails the task with the reason (and sends nothing)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.settings import ActorSettings
from manifests.sealing import new_private_key, private_key_text
from tests.actors.conftest import FAST_ACTOR, Runtime
from tests.helpers import consume_until, wait_until
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.providers.test_openai_provider import completion
from topics.codec import encode
from topics.messages import TaskCompleted, TaskFailed

pytestmark = pytest.mark.integration

PLAIN = "sk-sealed-8Hq2Lm5Zx0Pw7Rt4Vb"


@pytest.fixture
def model_server() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer().start()
    try:
        yield server
    finally:
        server.stop()


def manifests(folder: Path, server: FakeHTTPServer) -> list[Path]:
    secret = folder / "secret.yaml"
    secret.write_text(
        "apiVersion: orloj.dev/v1\nkind: Secret\nmetadata: {name: local-model-key}\n"
        f"spec:\n  stringData:\n    value: {PLAIN}\n"
    )
    system = folder / "system.yaml"
    system.write_text(
        f"""\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: local-model}}
spec:
  provider: openai-compatible
  base_url: {server.url}/v1
  default_model: local-1
  auth:
    secretRef: local-model-key
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: answerer}}
spec: {{model_ref: local-model, tools: [none]}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: sealed-system}}
spec:
  agents: [answerer]
"""
    )
    return [secret, system]


def leaks(blob: bytes) -> bool:
    """The plaintext, or its base64, anywhere in `blob`."""
    text = PLAIN.encode()
    return text in blob or base64.b64encode(text) in blob or base64.b64encode(text)[:-2] in blob


async def test_a_sealed_secret_is_the_bearer_token_and_never_on_kafka(
    runtime: Runtime, tmp_path: Path, model_server: FakeHTTPServer
) -> None:
    model_server.queue(Reply(body=completion({"content": "sealed and delivered"})))
    key = new_private_key()
    settings = ActorSettings.model_validate(
        {**FAST_ACTOR.model_dump(), "sealing_key": private_key_text(key)}
    )
    await runtime.start(
        manifests(tmp_path, model_server), settings=settings, sealing_key=key.public_key()
    )
    # Every byte the apply wrote, committed or not: keys, values and headers.
    records = await consume_until(
        runtime.kafka, runtime.names.manifests, 5, isolation_level="read_uncommitted"
    )
    kinds = {r.key.decode().split("/")[0] for r in records if r.key}
    assert {"Secret", "ModelEndpoint", "Agent", "AgentSystem"} <= kinds
    for record in records:
        blob = (record.key or b"") + (record.value or b"")
        blob += b"".join(name.encode() + (value or b"") for name, value in record.headers)
        assert not leaks(blob), record.key
    secret = next(r for r in records if r.key == b"Secret/local-model-key")
    assert b'"sealedData"' in (secret.value or b"") and b"sealed:v1:" in (secret.value or b"")

    task_id = await runtime.submit("sealed-system", "hello")
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted), result
    assert "sealed and delivered" in result.output
    calls = [r for r in model_server.requests if r.path.endswith("/chat/completions")]
    assert calls and all(r.headers["authorization"] == f"Bearer {PLAIN}" for r in calls)

    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    events = runtime.collector.events[task_id]
    assert runtime.collector.of_type(task_id, "model.called")
    assert not any(leaks(encode(e)) for e in events)
    assert not leaks(encode(result))


async def test_a_secret_the_actor_cannot_open_fails_the_call(
    runtime: Runtime, tmp_path: Path, model_server: FakeHTTPServer
) -> None:
    model_server.queue(Reply(body=completion({"content": "must not be asked"})))
    actor_key, other_key = new_private_key(), new_private_key()
    settings = ActorSettings.model_validate(
        {**FAST_ACTOR.model_dump(), "sealing_key": private_key_text(actor_key)}
    )
    await runtime.start(
        manifests(tmp_path, model_server), settings=settings, sealing_key=other_key.public_key()
    )
    task_id = await runtime.submit("sealed-system", "hello")
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskFailed), result
    assert "ModelEndpoint/local-model: auth.secretRef 'local-model-key'" in result.error
    assert "is sealed to the sealing key" in result.error
    assert model_server.requests == []
    called = runtime.collector.of_type(task_id, "model.called")
    assert called and called[0].data["status"] == "error"
    assert "sealed to the sealing key" in called[0].data["error"]
