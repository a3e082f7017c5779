"""What authentication and signatures cost: a SASL/SCRAM broker with ACLs against a plaintext
broker without an authorizer, and an Ed25519 decision signed and verified.

Starts two throwaway Kafka brokers with the stack's jars on free loopback ports, in temporary
folders, both new (a long-running broker against a new one would measure the JIT, not the
authentication): one as the stack's (`podium.stack._kafka`: SASL/SCRAM-SHA-512, the standard
authorizer, no access without an ACL), with a client user that is not a super user and holds
ACLs on the benchmark's topics and groups only; one plaintext, without an authorizer. On each,
in this one process:

- connect: a new producer's `start()` (the SCRAM handshake and the first metadata request on
  the SASL broker; only the metadata request on the plaintext one), `--connects` times;
- hop: a record produced and seen by a consumer assigned to its partition, one at a time,
  `--requests` times (the building block of every step);
- request-reply: the raw round trip of `policy_latency.py` (a requester, a replier in a consumer
  group that answers every request) at concurrency 1 and 64.

Each broker is warmed by a first, unreported pass. Then signs and verifies a `Decision` as the
policy service and its requesters do (`policy_service.signing`), `--signatures` times.
The last line:
`auth hop_ratio=<sasl/plain> p50_ratio=<sasl/plain at c=1> p99_ratio=<..> c64_p50_ratio=<..>
connect_sasl_ms=<..> connect_plain_ms=<..> sign_us=<..> verify_us=<..>`.

    .venv/bin/python bench/auth_cost.py [--requests 400] [--connects 20] [--signatures 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import TopicPartition
from policy_latency import RawRequester, measure, pct, raw_replier, report  # beside this file

from podium.core.settings import KafkaSettings, load_settings
from podium.stack import StackSettings
from podium.stack._kafka import ensure_jars, java_binary, server_properties
from podium.stack.credentials import ADMIN_USER, CONTROLLER_USER, SASL_MECHANISM
from policy_service.keys import generate, parse_signing_key, parse_verify_keys
from policy_service.signing import request_digest, sign_decision, verify_decision
from topics.acl_admin import create_acls
from topics.acls import AclBinding
from topics.kafka import ensure_topics, make_admin, make_consumer, make_producer
from topics.messages import Action, AuthorizationRequest, Decision, utcnow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plaintext_properties(data: Path, port: int, controller: int) -> str:
    """The stack broker's settings without SASL and the authorizer: its own listeners, then the
    stack's lines from `log.dirs` on (storage and topic settings)."""
    stack = server_properties(
        port=port, controller_port=controller, data=data, passwords=PASSWORDS
    ).split("\n")
    shared = next(i for i, line in enumerate(stack) if line.startswith("log.dirs="))
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            *stack[shared:],
        ]
    )


PASSWORDS = {ADMIN_USER: secrets.token_hex(16), CONTROLLER_USER: secrets.token_hex(16)}
CLIENT_USER, CLIENT_PASSWORD = "bench-client", secrets.token_hex(16)


def launch_broker(home: Path, *, secure: bool) -> tuple[subprocess.Popen[bytes], KafkaSettings]:
    """Format a broker's storage in `home` and start it in a session of its own."""
    stack = load_settings(StackSettings)
    java, libs = java_binary(), ensure_jars(stack)
    port, controller = free_port(), free_port()
    properties = home / "server.properties"
    data = home / "data"
    text = (
        server_properties(port=port, controller_port=controller, data=data, passwords=PASSWORDS)
        if secure
        else plaintext_properties(data, port, controller)
    )
    properties.write_text(text)
    classpath = f"{libs}/*"
    cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    users = {ADMIN_USER: PASSWORDS[ADMIN_USER], CLIENT_USER: CLIENT_PASSWORD}
    scram = [
        arg
        for user, password in users.items()
        for arg in ("--add-scram", f"{SASL_MECHANISM}=[name={user},password={password}]")
    ]
    subprocess.run(
        [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone", "-t",
         "A" + cluster[1:], "-c", str(properties), *(scram if secure else [])],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with (home / "console.log").open("wb") as log:
        broker = subprocess.Popen(
            [java, "-Xms256m", f"-Xmx{stack.kafka_heap_mb}m", "-XX:+UseG1GC",
             "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true", "-cp", classpath,
             "kafka.Kafka", str(properties)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=home,
        )  # fmt: skip
    kafka = KafkaSettings(bootstrap=f"127.0.0.1:{port}")
    if secure:
        kafka = KafkaSettings(
            bootstrap=kafka.bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=SASL_MECHANISM,
            sasl_username=ADMIN_USER,
            sasl_password=PASSWORDS[ADMIN_USER],
        )
    return broker, kafka


async def grant_client(admin: KafkaSettings) -> KafkaSettings:
    """The benchmark's client on the SASL broker: ACLs on the `bench` topics and groups only."""
    who = f"User:{CLIENT_USER}"
    bindings = [
        AclBinding(who, kind, "PREFIXED", "bench", operation)  # type: ignore[arg-type]
        for kind, operations in (
            ("TOPIC", ("READ", "WRITE", "CREATE", "DESCRIBE")),
            ("GROUP", ("READ",)),
        )
        for operation in operations
    ]
    await create_acls(admin, bindings)
    return admin.with_credentials(CLIENT_USER, CLIENT_PASSWORD)


async def wait_answers(broker: subprocess.Popen[bytes], kafka: KafkaSettings, home: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        producer = make_producer(kafka)
        try:
            await producer.start()
            return
        except Exception:
            if broker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the plaintext broker did not start; see {home / 'console.log'}"
                ) from None
            await asyncio.sleep(0.5)
        finally:
            await producer.stop()


def stop_broker(broker: subprocess.Popen[bytes]) -> None:
    if broker.poll() is None:
        os.killpg(broker.pid, signal.SIGTERM)
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(broker.pid, signal.SIGKILL)
            broker.wait(timeout=30)


async def connect_ms(kafka: KafkaSettings, times: int) -> float:
    """The median time of a new producer's `start()`."""
    spent = []
    for _ in range(times):
        producer = make_producer(kafka)
        began = time.perf_counter()
        await producer.start()
        spent.append((time.perf_counter() - began) * 1000)
        await producer.stop()
    return statistics.median(spent)


async def hop_ms(kafka: KafkaSettings, label: str, times: int) -> float:
    """The median time from `send` to the record in a `getmany` of an assigned consumer."""
    topic = f"bench{uuid.uuid4().hex[:8]}.hop"
    await ensure_topics(kafka, [topic], partitions=1)
    producer = make_producer(kafka)
    consumer = make_consumer(
        kafka, group_id=None, isolation_level="read_uncommitted", fetch_max_wait_ms=5
    )
    spent = []
    try:
        await producer.start()
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        for _ in range(times + 20):  # the first 20 warm the connections
            began = time.perf_counter()
            await producer.send(topic, b"x")
            while not await consumer.getmany(timeout_ms=1000):
                pass
            spent.append((time.perf_counter() - began) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
        await _delete(kafka, [topic])
    median = statistics.median(spent[20:])
    print(f"{label} hop: p50 {median:.2f} ms")
    return median


async def _delete(kafka: KafkaSettings, topics: list[str]) -> None:
    admin = make_admin(kafka)
    try:
        await admin.start()
        await admin.delete_topics(topics)
    finally:
        await admin.close()


async def round_trips(
    kafka: KafkaSettings, label: str, requests: int
) -> tuple[list[float], list[float]]:
    """The raw request-reply at concurrency 1 and 64 under a throwaway prefix."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    topic, replies = f"{prefix}.raw.requests", f"{prefix}.raw.replies"
    await ensure_topics(kafka, [topic])
    await ensure_topics(kafka, [replies], partitions=1)
    stop = asyncio.Event()
    replier = asyncio.create_task(raw_replier(kafka, topic, f"{prefix}.raw", stop))
    requester = RawRequester(kafka, topic, replies)
    try:
        await requester.start()
        await measure(requester.request, 100, 8)  # group join, metadata, connections
        one, one_rps = await measure(requester.request, requests, 1)
        many, many_rps = await measure(requester.request, requests * 4, 64)
        report(f"{label} c=1", one, one_rps)
        report(f"{label} c=64", many, many_rps)
        return one, many
    finally:
        await requester.stop()
        stop.set()
        await asyncio.gather(replier, return_exceptions=True)
        await _delete(kafka, [topic, replies])


def signature_us(times: int) -> tuple[float, float]:
    """Microseconds to sign a decision over its request's digest, and to verify it."""
    signing_text, verify_text = generate("bench")
    key, keys = parse_signing_key(signing_text), parse_verify_keys(verify_text)
    request = AuthorizationRequest(
        request_id="r1", task_id="t1", system="s", agent="a", step_id="s1",
        action=Action.TOOL_CALL, tool="web-search", arguments_digest="0" * 64,
        reply_to="bench.replies.x", deadline=utcnow(),
    )  # fmt: skip
    decision = Decision(request_id="r1", task_id="t1", decision="allow", rule="default")
    digest = request_digest(request)
    began = time.perf_counter()
    for _ in range(times):
        signed = sign_decision(decision, key, request_digest=digest)
    signing = (time.perf_counter() - began) / times * 1e6
    began = time.perf_counter()
    for _ in range(times):
        assert verify_decision(signed, keys)
    return signing, (time.perf_counter() - began) / times * 1e6


async def main(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="podium-bench-sasl-") as sasl_home,
        tempfile.TemporaryDirectory(prefix="podium-bench-plain-") as plain_home,
    ):
        brokers = []
        try:
            for home, secure in ((sasl_home, True), (plain_home, False)):
                broker, kafka = launch_broker(Path(home), secure=secure)
                brokers.append(broker)
                await wait_answers(broker, kafka, Path(home))
                if secure:
                    sasl = await grant_client(kafka)
                else:
                    plain = kafka
            connect_sasl = await connect_ms(sasl, args.connects)
            connect_plain = await connect_ms(plain, args.connects)
            print(f"connect: sasl {connect_sasl:.1f} ms, plaintext {connect_plain:.1f} ms")
            hop_sasl = await hop_ms(sasl, "sasl+acls", args.requests)
            hop_plain = await hop_ms(plain, "plaintext", args.requests)
            # A first pass on each warms the brokers (a new broker makes its offsets topic and
            # compiles its hot paths); the second, in the other order, is the one reported.
            await round_trips(plain, "warm-up plaintext", args.requests)
            await round_trips(sasl, "warm-up sasl+acls", args.requests)
            sasl1, sasl64 = await round_trips(sasl, "sasl+acls", args.requests)
            plain1, plain64 = await round_trips(plain, "plaintext", args.requests)
        finally:
            for broker in brokers:
                stop_broker(broker)
    sign, verify = signature_us(args.signatures)
    print(f"ed25519 decision: sign {sign:.1f} us, verify {verify:.1f} us")
    print(
        f"auth hop_ratio={hop_sasl / hop_plain:.2f} "
        f"p50_ratio={statistics.median(sasl1) / statistics.median(plain1):.2f} "
        f"p99_ratio={pct(sasl1, 0.99) / pct(plain1, 0.99):.2f} "
        f"c64_p50_ratio={statistics.median(sasl64) / statistics.median(plain64):.2f} "
        f"connect_sasl_ms={connect_sasl:.1f} connect_plain_ms={connect_plain:.1f} "
        f"sign_us={sign:.1f} verify_us={verify:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--connects", type=int, default=20)
    parser.add_argument("--signatures", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
