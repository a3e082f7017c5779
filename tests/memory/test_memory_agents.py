"""Agents using memory on the real stack, as `podium dev` and the split deployment build them
(the composition root): the mock model calls the memory tools, each call authorized by the
policy service and recorded as `tool.called`. A memory written in one task (postgres) is found
by a later task's search on another actor process, after the first has stopped; a memory tool
an AgentPolicy denies is never executed; and the http provider works through an agent too."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from actors.settings import ActorSettings
from podium import composition
from podium.cli import app
from policy_service.settings import PolicySettings
from tests.actors.conftest import FAST_ACTOR, SIGNING_KEY, VERIFY_KEYS, Runtime
from tests.helpers import APPROVER_PUBLIC, wait_until
from tests.memory.fake_adapter import FakeMemoryAdapter
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration

FACT = "Quarterly revenue grew 14% on cloud sales"

MANIFESTS = f"""\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: mock}}
spec:
  provider: mock
  default_model: mock-1
  options:
    script:
      scribe:
        - tool_calls: [{{name: memory.write, arguments: {{key: findings/q3, value: "{FACT}"}}}}]
        - content: "stored"
      seeker:
        - tool_calls: [{{name: memory.search, arguments: {{query: "cloud revenue", top_k: 3}}}}]
        - content: "found: {{tool_results}}"
      forbidden-scribe:
        - tool_calls: [{{name: memory.write, arguments: {{key: forbidden/x, value: "no"}}}}]
        - content: "told: {{tool_results}}"
      remote-scribe:
        - tool_calls:
            - {{name: memory.write, arguments: {{key: r/1, value: "alpha beta"}}}}
            - {{name: memory.read, arguments: {{key: r/1}}}}
        - content: "remote: {{tool_results}}"
---
apiVersion: orloj.dev/v1
kind: Memory
metadata: {{name: team-notes}}
spec: {{type: kv, provider: postgres}}
---
apiVersion: orloj.dev/v1
kind: Memory
metadata: {{name: remote-notes}}
spec: {{provider: http, endpoint: "ADAPTER_URL"}}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: scribe}}
spec: {{model_ref: mock, memory: {{ref: team-notes, allow: [write]}}}}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: seeker}}
spec: {{model_ref: mock, memory: {{ref: team-notes, allow: [search, read]}}}}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: forbidden-scribe}}
spec: {{model_ref: mock, memory: {{ref: team-notes, allow: [write]}}}}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: remote-scribe}}
spec: {{model_ref: mock, memory: {{ref: remote-notes, allow: [write, read]}}}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: write-notes}}
spec: {{agents: [scribe]}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: search-notes}}
spec: {{agents: [seeker]}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: forbidden-notes}}
spec: {{agents: [forbidden-scribe]}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: remote-system}}
spec: {{agents: [remote-scribe]}}
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {{name: no-memory-writes}}
spec:
  apply_mode: scoped
  target_systems: [forbidden-notes]
  blocked_tools: [memory.write]
"""

POLICY = PolicySettings(
    signing_key=SIGNING_KEY, verify_keys=VERIFY_KEYS, approver_keys=APPROVER_PUBLIC
)


@pytest.fixture
def adapter() -> Iterator[FakeMemoryAdapter]:
    server = FakeMemoryAdapter().start()
    try:
        yield server
    finally:
        server.stop()


def settings(database_url: str, schema: str) -> ActorSettings:
    return ActorSettings.model_validate(
        {
            **FAST_ACTOR.model_dump(),
            "memory_database_url": database_url,
            "memory_schema": f"m{schema}",
        }
    )


async def podium(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


class Actors:
    """One actor process's worth of actors (an `ActorRole`), stopped on its own."""

    def __init__(self, runtime: Runtime, agents: list[str], actor_settings: ActorSettings):
        self.stop = asyncio.Event()
        self.role = composition.ActorRole(runtime.kafka, agents, actor_settings, POLICY)
        self.task = asyncio.create_task(self.role.run(self.stop), name=self.role.name)

    async def ready(self) -> None:
        await wait_until(lambda: self.role.ready.is_set() or self.task.done(), timeout=60)
        if self.task.done():
            self.task.result()

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 60)


async def entries(database_url: str, schema: str) -> list[tuple[str, str, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            f"SELECT memory, key, value FROM m{schema}.entries ORDER BY memory, key"
        )
    finally:
        await conn.close()
    return [(r["memory"], r["key"], r["value"]) for r in rows]


async def drop(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS m{schema} CASCADE")
    finally:
        await conn.close()


def write(tmp_path: Path, adapter_url: str = "http://127.0.0.1:9") -> list[Path]:
    file = tmp_path / "memory.yaml"
    file.write_text(MANIFESTS.replace("ADAPTER_URL", adapter_url))
    return [file]


async def completed(runtime: Runtime, system: str) -> tuple[str, str]:
    task_id = await runtime.submit(system, f"go {uuid.uuid4().hex[:6]}")
    result = await runtime.result(task_id, timeout=90)
    assert isinstance(result, TaskCompleted), result
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    return task_id, result.output


def memory_calls(runtime: Runtime, task_id: str) -> list[tuple[str, str]]:
    return [
        (e.data["tool"], e.data["status"])
        for e in runtime.collector.of_type(task_id, "tool.called")
    ]


def decisions(runtime: Runtime, task_id: str) -> list[tuple[str, str]]:
    return [
        (e.data["tool"], e.data["decision"])
        for e in runtime.collector.of_type(task_id, "policy.decided")
        if e.data.get("tool")
    ]


async def test_a_memory_written_by_one_task_is_found_by_a_later_task_on_another_actor(
    runtime: Runtime, tmp_path: Path, database_url: str, pg_schema: str
) -> None:
    actor_settings = settings(database_url, pg_schema)
    await runtime.start(write(tmp_path), actors=False)
    try:
        writer = Actors(runtime, ["scribe"], actor_settings)
        await writer.ready()
        try:
            first, output = await completed(runtime, "write-notes")
        finally:
            await writer.close()  # the writing actor process is gone
        assert output == "stored"
        assert decisions(runtime, first) == [("memory.write", "allow")]
        assert memory_calls(runtime, first) == [("memory.write", "ok")]
        assert await entries(database_url, pg_schema) == [("team-notes", "findings/q3", FACT)]

        reader = Actors(runtime, ["seeker"], actor_settings)
        await reader.ready()
        try:
            second, output = await completed(runtime, "search-notes")
        finally:
            await reader.close()
        assert output.startswith('found: {"results": [{"key": "findings/q3", "value": "'), output
        assert FACT in output and '"count": 1' in output
        assert decisions(runtime, second) == [("memory.search", "allow")]
        assert memory_calls(runtime, second) == [("memory.search", "ok")]

        # The operator sees the same entries with the actors' settings.
        env = {
            **runtime.kafka.as_env(),
            "PODIUM_ACTOR_MEMORY_DATABASE_URL": database_url,
            "PODIUM_ACTOR_MEMORY_SCHEMA": f"m{pg_schema}",
        }
        searched = await podium(
            env, "memory-entries", "team-notes", "--query", "cloud", "-o", "json"
        )
        assert searched.exit_code == 0, searched.output
        [entry] = json.loads(searched.output)
        assert (entry["key"], entry["value"]) == ("findings/q3", FACT) and entry["score"] > 0
        assert entry["metadata"] == {
            "agent": "scribe",
            "call": f"{first}/{entry['metadata']['call'].split('/', 1)[1]}",
        }
        listed = await podium(env, "memory-entries", "team-notes", "--prefix", "findings/")
        assert (
            listed.exit_code == 0 and "findings/q3" in listed.output and "scribe" in listed.output
        )
        none = await podium(env, "memory-entries", "team-notes", "--prefix", "zzz")
        assert none.exit_code == 0 and "has no entries that match" in none.output
        missing = await podium(env, "memory-entries", "nope")
        assert missing.exit_code != 0 and "Memory/nope is not applied" in missing.output
    finally:
        await drop(database_url, pg_schema)


async def test_a_memory_tool_the_policy_denies_is_never_executed(
    runtime: Runtime, tmp_path: Path, database_url: str, pg_schema: str
) -> None:
    await runtime.start(
        write(tmp_path), actors=["forbidden-scribe"], settings=settings(database_url, pg_schema)
    )
    try:
        task_id, output = await completed(runtime, "forbidden-notes")
        assert output.startswith("told: denied: the call to memory.write was not allowed"), output
        assert decisions(runtime, task_id) == [("memory.write", "deny")]
        [called] = runtime.collector.of_type(task_id, "tool.called")
        assert called.data["status"] == "denied"
        assert called.data["error"] == "tool 'memory.write' is denied to 'forbidden-scribe'"
        # Nothing was written: the store was never even made (no table).
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT to_regclass($1)", f"m{pg_schema}.entries") is None
        finally:
            await conn.close()
    finally:
        await drop(database_url, pg_schema)


async def test_an_agent_uses_an_http_memory_adapter(
    runtime: Runtime, tmp_path: Path, adapter: FakeMemoryAdapter
) -> None:
    await runtime.start(write(tmp_path, adapter.url), actors=["remote-scribe"])
    task_id, output = await completed(runtime, "remote-system")
    assert adapter.entries == {"r/1": "alpha beta"}
    assert output == (
        'remote: {"status": "ok", "key": "r/1"}\n'
        '{"found": true, "key": "r/1", "value": "alpha beta"}'
    ), output
    assert memory_calls(runtime, task_id) == [("memory.write", "ok"), ("memory.read", "ok")]
