"""An agent with `execution.output_schema` on the real stack: the provider asks the vendor for
structured output (an OpenAI-compatible fake server here), the task's output is the JSON, and an
answer that does not match the schema fails the task as a contract violation, recorded as an
`agent.contract` event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.actors.conftest import Runtime
from tests.helpers import wait_until
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.providers.test_openai_provider import completion
from topics.messages import TaskCompleted, TaskFailed

pytestmark = pytest.mark.integration

SCHEMA = """\
      type: object
      properties:
        title: {type: string}
        score: {type: integer, minimum: 0, maximum: 10}
      required: [title, score]"""


@pytest.fixture
def model_server() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer().start()
    try:
        yield server
    finally:
        server.stop()


def manifests(folder: Path, server: FakeHTTPServer) -> list[Path]:
    path = folder / "system.yaml"
    path.write_text(
        f"""\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: local-model}}
spec:
  provider: openai-compatible
  base_url: {server.url}/v1
  default_model: local-1
---
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: offline}}
spec:
  provider: mock
  default_model: mock-1
  options:
    script:
      sloppy-rater: ['{{"title": "x", "score": "high"}}']
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: rater}}
spec:
  model_ref: local-model
  prompt: Rate the text.
  execution:
    output_schema:
{SCHEMA}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: sloppy-rater}}
spec:
  model_ref: offline
  execution:
    output_schema:
{SCHEMA}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: rating}}
spec:
  agents: [rater]
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: sloppy-rating}}
spec:
  agents: [sloppy-rater]
"""
    )
    return [path]


async def test_structured_output_end_to_end(
    runtime: Runtime, tmp_path: Path, model_server: FakeHTTPServer
) -> None:
    model_server.queue(Reply(body=completion({"content": '{"title": "Kafka", "score": 8}'})))
    await runtime.start(manifests(tmp_path, model_server))

    task_id = await runtime.submit("rating", "Kafka is a log.")
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted), result
    assert json.loads(result.output) == {"title": "Kafka", "score": 8}
    [call] = [r for r in model_server.requests if r.path.endswith("/chat/completions")]
    response_format = call.json()["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["required"] == ["title", "score"]

    sloppy = await runtime.submit("sloppy-rating", "anything")
    failed = await runtime.result(sloppy, timeout=60)
    assert isinstance(failed, TaskFailed), failed
    assert "agent contract violation: agent=sloppy-rater" in failed.error
    assert "output does not match output_schema: score: 'high' is not of type 'integer'" in (
        failed.error
    )
    await wait_until(lambda: runtime.collector.of_type(sloppy, "agent.contract"))
    [event] = runtime.collector.of_type(sloppy, "agent.contract")
    assert event.data["kind"] == "violation" and event.agent == "sloppy-rater"
