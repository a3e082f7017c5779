"""Orloj's event-driven webhook use case, end to end under `podium dev`: a signed POST to the
TaskWebhook starts its template's planner -> research -> writer pipeline (mock provider), with
the raw body as `webhook_payload`; the sender's retry of the same event is the same task and runs
once; a forged delivery starts nothing. The webhook's HMAC secret is an Orloj `Secret`, sealed by
`podium apply` and opened by the ledger with its sealing key."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest

from manifests.apply import apply_paths
from manifests.sealing import new_private_key, private_key_text
from podium.core.settings import KafkaSettings
from tests.faults.cluster import Cluster, read_topic
from tests.helpers import wait_until
from topics.codec import decode
from topics.messages import AnyResult, TaskCompleted, TaskRequested
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HMAC_SECRET = "a-long-random-shared-secret-for-the-webhook"

# The use case's resources as Orloj has them, with the mock provider in place of OpenAI.
USE_CASE = f"""\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: uc-webhook-model}}
spec: {{provider: mock, default_model: gpt-4o-mini}}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata:
  name: uc-webhook-hmac-secret
  labels: {{orloj.dev/use-case: event-driven-webhook}}
spec:
  stringData:
    value: {HMAC_SECRET}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: uc-webhook-planner-agent}}
spec:
  model_ref: uc-webhook-model
  prompt: Extract intent from the webhook payload and plan research and writing.
  limits: {{max_steps: 4, timeout: 20s}}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: uc-webhook-research-agent}}
spec:
  model_ref: uc-webhook-model
  prompt: Research what the plan asks for.
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: uc-webhook-writer-agent}}
spec:
  model_ref: uc-webhook-model
  prompt: Write the summary.
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata:
  name: uc-webhook-pipeline-system
  labels: {{orloj.dev/pattern: pipeline}}
spec:
  agents: [uc-webhook-planner-agent, uc-webhook-research-agent, uc-webhook-writer-agent]
  graph:
    uc-webhook-planner-agent:
      edges: [{{to: uc-webhook-research-agent}}]
    uc-webhook-research-agent:
      edges: [{{to: uc-webhook-writer-agent}}]
---
apiVersion: orloj.dev/v1
kind: Task
metadata: {{name: uc-webhook-template-task}}
spec:
  mode: template
  system: uc-webhook-pipeline-system
  priority: normal
  input:
    topic: default topic if payload omits context
    webhook_payload: ""
  retry: {{max_attempts: 2, backoff: 2s}}
---
apiVersion: orloj.dev/v1
kind: TaskWebhook
metadata: {{name: uc-webhook-generic}}
spec:
  task_ref: uc-webhook-template-task
  auth:
    profile: generic
    secret_ref: uc-webhook-hmac-secret
  idempotency:
    event_id_header: X-Event-Id
    dedupe_window_seconds: 86400
  payload:
    mode: raw
    input_key: webhook_payload
"""

PATH = "/v1/webhook-deliveries/uc-webhook-generic"


def signed(body: bytes, event: str, secret: str = HMAC_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Timestamp": stamp, "X-Event-Id": event, "X-Signature": f"sha256={digest}"}


async def test_a_signed_delivery_runs_the_pipeline_once(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    database_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    manifests = tmp_path / "event-driven-webhook.yaml"
    manifests.write_text(USE_CASE)
    sealing = new_private_key()
    report = await apply_paths(
        kafka_settings, topic_names, [manifests], sealing_key=sealing.public_key()
    )
    assert report.ok, report.errors
    home = tmp_path / "cluster"
    home.mkdir()
    (home / "stack.json").write_text("{}")  # `podium dev` records its API's address here
    cluster = Cluster(
        kafka_settings,
        database_url,
        home,
        ledger_schema=pg_schema,
        env_extra={"PODIUM_LEDGER_SEALING_KEY": private_key_text(sealing)},
    )

    def api_url() -> str | None:
        url = json.loads((home / "stack.json").read_text() or "{}").get("api_url")
        return str(url) if url else None

    async def results() -> list[AnyResult]:
        return [
            decode(r.value, AnyResult)
            for r in await read_topic(kafka_settings, topic_names.results)
        ]

    body = json.dumps({"ticket": "OPS-4411", "summary": "checkout latency doubled"}).encode()
    try:
        cluster.start("dev", "dev")
        await cluster.wait_ready()
        url = await wait_until(api_url, timeout=30, interval=0.2, message="the API's address")
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            forged = await http.post(
                PATH, content=body, headers=signed(body, "evt-1", secret="guessed")
            )
            assert forged.status_code == 401, forged.text
            first = await http.post(PATH, content=body, headers=signed(body, "evt-1"))
            assert first.status_code == 202, first.text + cluster.logs("dev")
            task_id = first.json()["task_id"]
            retry = await http.post(PATH, content=body, headers=signed(body, "evt-1"))
            assert retry.status_code == 202, retry.text
            assert retry.json() == {
                **first.json(),
                "duplicate": True,
                "message": "duplicate delivery",
            }

        async def finished() -> list[AnyResult]:
            return [r for r in await results() if r.task_id == task_id]

        done = await wait_until(
            finished, timeout=180, interval=0.5, message="the pipeline's result"
        )
    finally:
        cluster.close()
    assert [type(r) for r in done] == [TaskCompleted], cluster.logs()
    assert done[0].output.startswith("uc-webhook-writer-agent:"), done[0].output
    tasks = [
        decode(r.value, TaskRequested) for r in await read_topic(kafka_settings, topic_names.tasks)
    ]
    assert [t.task_id for t in tasks] == [task_id], "one task for the event, none for the forgery"
    started = tasks[0]
    assert started.system == "uc-webhook-pipeline-system"
    assert started.submitted_by == "webhook/uc-webhook-generic"
    assert started.input["webhook_payload"] == body.decode()
    assert started.input["topic"] == "default topic if payload omits context"
