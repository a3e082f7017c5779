"""Orloj's `Tool.spec.auth` on the real stack: a Tool applied with a sealed Secret, called by an
agent, sends each profile's header to the tool (a fake HTTP server); no plaintext byte reaches
Kafka, the `tool.called` events or the result, even when the tool echoes it; a Secret the actor
cannot open fails the call (naming the tool, the Secret and the fix) and sends nothing; and an
auth that Podium cannot honour is refused at apply."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.settings import ActorSettings
from manifests.apply import apply_paths
from manifests.sealing import new_private_key, private_key_text
from tests.actors.conftest import FAST_ACTOR, Runtime
from tests.helpers import consume_until, wait_until
from tests.providers.fake_http import FakeHTTPServer, Reply
from topics.codec import encode
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration

PLAIN = "stub-auth-key-5Jw8Qe2Rt6Yu"
CLIENT_SECRET = "cs-3Vb7Nm1Kx9Lq"
TOKEN = "at-oauth2-4Hg6Df8Sa0"


@pytest.fixture
def tool_server() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer().start()
    try:
        yield server
    finally:
        server.stop()


def system(auth: str) -> str:
    return f"""\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: mock}}
spec:
  provider: mock
  default_model: mock-1
  options:
    script:
      caller:
        - tool_calls: [{{name: rr-real-http-auth-tool, arguments: {{query: "status"}}}}]
        - content: "called the tool"
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: caller}}
spec: {{model_ref: mock, tools: [rr-real-http-auth-tool]}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: auth-system}}
spec: {{agents: [caller]}}
---
# Orloj's testing/scenarios-real/08-tool-auth-and-contract, its auth as the test sets it.
apiVersion: orloj.dev/v1
kind: Tool
metadata:
  name: rr-real-http-auth-tool
  namespace: rr-real-tool-auth
spec:
  type: http
  endpoint: %(endpoint)s
  input_schema: {{type: object, properties: {{query: {{type: string}}}}}}
  runtime:
    timeout: 30s
    retry: {{max_attempts: 1}}
  auth:
{auth}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata:
  name: rr-real-tool-auth-key
  namespace: rr-real-tool-auth
spec:
  stringData:
    value: {PLAIN}
    basic: "alice:{PLAIN}"
    client_id: podium-tests
    client_secret: {CLIENT_SECRET}
"""


def write(folder: Path, auth: str, endpoint: str) -> list[Path]:
    file = folder / "auth.yaml"
    file.write_text(system(auth) % {"endpoint": endpoint})
    return [file]


def leaks(blob: bytes) -> bool:
    """A secret value, or its base64, anywhere in `blob`."""
    for text in (PLAIN.encode(), CLIENT_SECRET.encode(), TOKEN.encode()):
        if text in blob or base64.b64encode(text)[:-2] in blob:
            return True
    return False


def actor_settings(key: X25519PrivateKey) -> ActorSettings:
    return ActorSettings.model_validate(
        {**FAST_ACTOR.model_dump(), "sealing_key": private_key_text(key)}
    )


PROFILES = {
    "bearer": (
        "    secretRef: rr-real-tool-auth-key",
        "authorization",
        f"Bearer {PLAIN}",
    ),
    "api_key_header": (
        "    profile: api_key_header\n    secretRef: rr-real-tool-auth/rr-real-tool-auth-key\n"
        "    headerName: X-Stub-Key",
        "x-stub-key",
        PLAIN,
    ),
    "basic": (
        "    profile: basic\n    secretRef: 'rr-real-tool-auth-key:basic'",
        "authorization",
        "Basic " + base64.b64encode(f"alice:{PLAIN}".encode()).decode(),
    ),
    "oauth2_client_credentials": (
        "    profile: oauth2_client_credentials\n    secretRef: rr-real-tool-auth-key\n"
        "    tokenURL: %(endpoint)s/oauth/token\n    scopes: [tools.read]",
        "authorization",
        f"Bearer {TOKEN}",
    ),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_an_orloj_tool_with_auth_sends_its_header_and_never_leaks_it(
    runtime: Runtime, tmp_path: Path, tool_server: FakeHTTPServer, profile: str
) -> None:
    auth, header, expected = PROFILES[profile]
    if profile == "oauth2_client_credentials":
        tool_server.queue(Reply(body={"access_token": TOKEN, "expires_in": 600}))
    # The tool echoes what it was sent: the mask keeps it out of the model and the events.
    tool_server.queue(Reply(body={"you_sent": expected}))
    key = new_private_key()
    await runtime.start(
        write(tmp_path, auth, tool_server.url),
        settings=actor_settings(key),
        sealing_key=key.public_key(),
    )
    records = await consume_until(
        runtime.kafka, runtime.names.manifests, 5, isolation_level="read_uncommitted"
    )
    assert b"Tool/rr-real-http-auth-tool" in {r.key for r in records}
    assert not any(leaks((r.key or b"") + (r.value or b"")) for r in records)

    task_id = await runtime.submit("auth-system", "call it")
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted), result
    calls = [r for r in tool_server.requests if r.path != "/oauth/token"]
    assert len(calls) == 1 and calls[0].headers[header] == expected
    assert calls[0].json() == {"query": "status"}
    if profile == "oauth2_client_credentials":
        [exchange] = [r for r in tool_server.requests if r.path == "/oauth/token"]
        assert b"grant_type=client_credentials" in exchange.body

    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    [called] = runtime.collector.of_type(task_id, "tool.called")
    assert called.data["status"] == "ok", called.data
    assert not any(leaks(encode(e)) for e in runtime.collector.events[task_id])
    assert not leaks(encode(result))


async def test_a_secret_the_actor_cannot_open_fails_the_tool_call_and_sends_nothing(
    runtime: Runtime, tmp_path: Path, tool_server: FakeHTTPServer
) -> None:
    tool_server.queue(Reply(body={"must": "not be called"}))
    actor_key, other_key = new_private_key(), new_private_key()
    await runtime.start(
        write(tmp_path, PROFILES["api_key_header"][0], tool_server.url),
        settings=actor_settings(actor_key),
        sealing_key=other_key.public_key(),
    )
    task_id = await runtime.submit("auth-system", "call it")
    result = await runtime.result(task_id, timeout=60)
    # The model is told the tool failed and answers anyway (its script's second reply).
    assert isinstance(result, TaskCompleted), result
    assert tool_server.requests == []
    [called] = runtime.collector.of_type(task_id, "tool.called")
    assert called.data["status"] == "error"
    error = called.data["error"]
    assert error.startswith(
        "Tool/rr-real-http-auth-tool: auth.secretRef 'rr-real-tool-auth/rr-real-tool-auth-key': "
        "Secret/rr-real-tool-auth-key"
    ), error
    assert "is sealed to the sealing key" in error and "apply the Secret again" in error
    assert not any(leaks(encode(e)) for e in runtime.collector.events[task_id])


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "    profile: digest\n    secretRef: rr-real-tool-auth-key",
            "spec.auth.profile: 'digest' is not one of bearer, api_key_header, basic, "
            "oauth2_client_credentials",
        ),
        (
            "    profile: api_key_header\n    secretRef: rr-real-tool-auth-key",
            "`headerName` is required when auth.profile is api_key_header",
        ),
        (
            "    secretRef: 'rr-real-tool-auth-key:token'",
            "Secret/rr-real-tool-auth-key has no key 'token' (it has basic, client_id,",
        ),
    ],
)
async def test_an_auth_podium_cannot_honour_is_refused_at_apply(
    runtime: Runtime, tmp_path: Path, auth: str, expected: str
) -> None:
    key = new_private_key()
    report = await apply_paths(
        runtime.kafka,
        runtime.names,
        write(tmp_path, auth, "http://127.0.0.1:9"),
        sealing_key=key.public_key(),
    )
    found = [str(e) for e in report.errors]
    assert any("Tool/rr-real-http-auth-tool" in p and expected in p for p in found), found
