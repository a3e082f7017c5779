"""A burst of tasks through a 3-agent pipeline whose model answers in 1.0 s: wall time and the
number of model calls in flight at peak, with default settings.

Runs on the running stack (`podium stack up`), under a throwaway topic prefix (removed at the
end): a fake OpenAI-compatible server on loopback (every chat completion answers after
`--latency` seconds and counts the requests it holds at once), the pipeline
`first -> second -> third` on it (provider `openai-compatible`, the real SDK code path), and
`podium policy`, `podium dispatcher` and one `podium actor` per agent as separate processes with
their default settings. Every task makes 3 model calls, one after the other, so the floor of a
burst is 3 x latency. Prints the CPU time each process spent during the burst, when the burst's
last task reached each topic, and last:
`burst wall_s=<s> floor_s=<s> peak_in_flight=<n> tasks=<n>`.

    .venv/bin/python bench/slow_model_burst.py [--burst 200] [--latency 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from pipeline import (  # beside this file
    AGENTS,
    SIGNING_KEY,
    VERIFY_KEYS,
    Observer,
    cleanup,
    deploy,
    pipeline_manifests,
    start_services,
    stop_processes,
    task_sender,
    wait_done,
)

from podium import environment
from topics.kafka import make_producer
from topics.names import TopicNames


class SlowModel:
    """A Chat Completions endpoint that answers after `latency` seconds (HTTP/1.1 keep-alive)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.in_flight = 0
        self.peak = 0
        self.calls = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                await reader.readexactly(length)
                self.in_flight += 1
                self.calls += 1
                self.peak = max(self.peak, self.in_flight)
                try:
                    await asyncio.sleep(self.latency)
                finally:
                    self.in_flight -= 1
                body = json.dumps(
                    {
                        "id": "chatcmpl-bench",
                        "object": "chat.completion",
                        "created": 1700000000,
                        "model": "slow-1",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "done"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
                    }
                ).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def manifests(port: int) -> str:
    return pipeline_manifests(
        f"""
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {{name: bench-slow}}
spec:
  provider: openai-compatible
  base_url: http://127.0.0.1:{port}/v1
  api_key_env: OPENAI_API_KEY
  default_model: slow-1
""",
        endpoint="bench-slow",
        model="slow-1",
    )


async def main(args: argparse.Namespace) -> None:
    kafka = environment.admin_kafka_settings()
    database = environment.database_settings()
    home = Path(tempfile.mkdtemp(prefix="podium-bench-burst-"))
    model = SlowModel(args.latency)
    port = await model.start()
    prefix = f"bslow{uuid.uuid4().hex[:6]}"
    pkafka = kafka.model_copy(update={"topic_prefix": prefix})
    names = TopicNames(prefix)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **pkafka.as_env(),  # the stack's admin: the benchmark's topics have a prefix of its own
        "PODIUM_DATABASE_URL": database.url,
        "PODIUM_POLICY_SIGNING_KEY": SIGNING_KEY,
        "PODIUM_POLICY_VERIFY_KEYS": VERIFY_KEYS,
        "OPENAI_API_KEY": "sk-bench",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await deploy(pkafka, names, home, manifests(port))
        procs = start_services(env, home)
        observer = Observer(
            pkafka, [*(names.agent(a) for a in AGENTS), names.results], kafka.partitions
        )
        await observer.start()
        producer = make_producer(pkafka)
        await producer.start()
        send = task_sender(producer, names)

        try:
            warm = [f"{prefix}-warm-{i}" for i in range(3)]
            await asyncio.gather(*(send(k) for k in warm))
            await wait_done(observer, warm, timeout=120)
            model.peak = 0
            cpu_before = [cpu_seconds(proc.pid) for proc in procs]
            keys = [f"{prefix}-burst-{i}" for i in range(args.burst)]
            started = time.perf_counter()
            await asyncio.gather(*(send(k) for k in keys))
            await wait_done(observer, keys, timeout=600)
            wall = time.perf_counter() - started
            cpu = [cpu_seconds(p.pid) - b for p, b in zip(procs, cpu_before, strict=True)]
            stages = [
                max(observer.seen[k].get(topic, started) for k in keys) - started
                for topic in observer.topics
            ]
        finally:
            await producer.stop()
            await observer.stop()
    finally:
        stop_processes(procs)
        await model.stop()
        with contextlib.suppress(Exception):
            await cleanup(kafka, [prefix])
    floor = 3 * args.latency
    print(f"{args.burst} tasks, 3 agents, model latency {args.latency:g} s; logs in {home}")
    last = ", ".join(
        f"{t.rsplit('.', 1)[-1]} {s:.2f} s"
        for t, s in zip([*AGENTS, "results"], stages, strict=True)
    )
    roles = ["policy", "dispatcher", *AGENTS]
    print(
        "CPU during the burst: "
        + ", ".join(f"{r} {c:.2f} s" for r, c in zip(roles, cpu, strict=True))
    )
    print(f"last arrival on each topic after the burst started: {last}")
    figures = f"wall_s={wall:.2f} floor_s={floor:.2f} peak_in_flight={model.peak}"
    print(f"burst {figures} tasks={args.burst}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200, help="tasks at once")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per model answer")
    asyncio.run(main(parser.parse_args()))
