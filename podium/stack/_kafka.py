"""Apache Kafka (KRaft, one combined broker+controller) from its Maven Central jars."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka.client import AIOKafkaClient

from podium.core.settings import KafkaSettings
from podium.stack import credentials
from podium.stack._processes import (
    StackError,
    cmdline,
    pid_alive,
    port_open,
    require_binary,
    run,
    spawn_detached,
    tail,
)
from podium.stack._settings import StackSettings
from podium.stack.state import KafkaProcess, stack_dir
from topics.kafka import connection_options

log = logging.getLogger(__name__)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.podium</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <dependencies>{dependencies}</dependencies>
</project>
"""
_DEPENDENCY = (
    "<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
    "<version>{version}</version></dependency>"
)
_SLF4J_API = re.compile(r"^slf4j-api-(\d+\.\d+\.\d+)\.jar$")


def kafka_home() -> Path:
    return stack_dir() / "kafka"


def libs_dir(settings: StackSettings) -> Path:
    return settings.jar_cache() / f"kafka-{settings.kafka_version}" / "libs"


def java_binary() -> Path:
    return require_binary("java", package="openjdk-17-jre-headless")


def ensure_jars(settings: StackSettings) -> Path:
    """Resolve Kafka's runtime jars with Maven into the cache, once per version.

    The jars land in a temporary folder renamed into place at the end, so an interrupted
    download is never taken for a complete one. The slf4j binding is `slf4j-simple` of exactly
    the `slf4j-api` version Kafka resolves to.
    """
    libs = libs_dir(settings)
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = require_binary("mvn", package="maven")
    java_binary()
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libs.parent, prefix=".resolve-") as tmp:
        work = Path(tmp)
        out = work / "libs"
        kafka = _DEPENDENCY.format(
            group="org.apache.kafka", artifact="kafka_2.13", version=settings.kafka_version
        )
        _copy_dependencies(mvn, work / "kafka", kafka, out, transitive=True)
        api = [m.group(1) for p in out.iterdir() if (m := _SLF4J_API.match(p.name))]
        if len(api) != 1:
            raise StackError(f"expected one slf4j-api jar among Kafka's dependencies, found {api}")
        binding = _DEPENDENCY.format(group="org.slf4j", artifact="slf4j-simple", version=api[0])
        _copy_dependencies(mvn, work / "binding", binding, out, transitive=False)
        if libs.exists():
            shutil.rmtree(libs)
        out.rename(libs)
    return libs


def _copy_dependencies(
    mvn: Path, project: Path, dependencies: str, out: Path, *, transitive: bool
) -> None:
    project.mkdir(parents=True)
    (project / "pom.xml").write_text(_POM.format(dependencies=dependencies))
    run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            project / "pom.xml",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
            f"-DexcludeTransitive={'false' if transitive else 'true'}",
        ],
        what="resolving Kafka's jars with Maven",
        timeout=1200,
    )


def server_properties(
    *,
    port: int | str,
    controller_port: int | str,
    data: Path | str,
    passwords: dict[str, str],
    bind: str = "127.0.0.1",
    host: str = "127.0.0.1",
) -> str:
    """SASL/SCRAM-SHA-512 on the client listener, SASL/PLAIN on the controller's (a PLAINTEXT
    controller listener would make `User:ANONYMOUS` a super user), the standard authorizer,
    and no access where no ACL grants it; listening on `bind`, reached as `host`. The first line
    changes with any password, so that new credentials mean new storage (the SCRAM users are
    written when it is formatted). The local stack's broker, and compose.yaml's
    (`podium.stack.compose_broker`, which passes shell variables for the values)."""
    cport = controller_port
    admin, ctl = credentials.ADMIN_USER, credentials.CONTROLLER_USER
    scram = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin}" password="{passwords[admin]}";'
    )
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ctl}" password="{passwords[ctl]}" user_{ctl}="{passwords[ctl]}";'
    )
    return "\n".join(
        [
            f"# credentials {credentials.fingerprint(passwords)}",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={host}:{cport}",
            f"listeners=SASL_PLAINTEXT://{bind}:{port},CONTROLLER://{bind}:{cport}",
            f"advertised.listeners=SASL_PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "CONTROLLER:SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={credentials.SASL_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={credentials.SASL_MECHANISM}",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={scram}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{admin};User:{ctl}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={data}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=12",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=12",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "message.max.bytes=8388608",
            "",
        ]
    )


def _cluster_id() -> str:
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


def is_running(process: KafkaProcess) -> bool:
    """The recorded broker's process is alive (and is a Kafka broker) and its port answers."""
    return (
        pid_alive(process.pid) and "kafka.Kafka" in cmdline(process.pid) and port_open(process.port)
    )


def start(settings: StackSettings) -> KafkaProcess:
    """Format storage (once) and start the broker detached; return once it serves metadata."""
    java = java_binary()
    libs = ensure_jars(settings)
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if port_open(port):
            raise StackError(
                f"port {port} is already in use by another process: stop it, or choose other "
                "ports with PODIUM_STACK_KAFKA_PORT / PODIUM_STACK_KAFKA_CONTROLLER_PORT"
            )
    home = kafka_home()
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    passwords = credentials.ensure_kafka_credentials()
    text = server_properties(
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        data=data,
        passwords=passwords,
    )
    if properties.exists() and properties.read_text() != text and data.exists():
        # The quorum's address and the SCRAM users are written into the formatted storage:
        # new ports or credentials, new storage.
        shutil.rmtree(data)
    fd = os.open(properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds passwords
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    properties.chmod(0o600)
    classpath = f"{libs}/*"
    if not (data / "meta.properties").exists():
        run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                _cluster_id(),
                "-c",
                properties,
                *(
                    arg
                    for user in credentials.kafka_users()
                    for arg in (
                        "--add-scram",
                        f"{credentials.SASL_MECHANISM}=[name={user},password={passwords[user]}]",
                    )
                ),
            ],
            what="formatting Kafka's storage (kafka.tools.StorageTool format)",
            timeout=120,
        )
    server_log = home / "server.log"
    console_log = home / "console.log"
    pid = spawn_detached(
        [
            java,
            "-Xms256m",
            f"-Xmx{settings.kafka_heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dorg.slf4j.simpleLogger.logFile={server_log}",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-cp",
            classpath,
            "kafka.Kafka",
            properties,
        ],
        log_file=console_log,
        cwd=home,
    )
    process = KafkaProcess(
        bootstrap=f"127.0.0.1:{settings.kafka_port}",
        pid=pid,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        version=settings.kafka_version,
        data_dir=str(data),
        sasl=True,
    )
    wait_ready(process, timeout=settings.ready_timeout_s)
    return process


def wait_ready(process: KafkaProcess, *, timeout: float) -> None:
    """Poll until a metadata request succeeds, the broker dies, or the deadline passes."""
    deadline = time.monotonic() + timeout
    home = kafka_home()
    while True:
        if not pid_alive(process.pid):
            raise StackError(
                "Kafka exited during start-up; see "
                f"{home / 'server.log'} and {home / 'console.log'}: "
                f"{tail(home / 'console.log', 5)} {tail(home / 'server.log', 5)}"
            )
        if port_open(process.port) and metadata_ok(admin_settings(process)):
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"Kafka did not answer on {process.bootstrap} within {timeout:.0f} s; "
                f"see {home / 'server.log'}"
            )
        time.sleep(0.5)


def admin_settings(process: KafkaProcess) -> KafkaSettings:
    """The stack's broker as its admin (super user)."""
    return credentials.client_settings(process.bootstrap, credentials.ADMIN_USER)


def metadata_ok(kafka: KafkaSettings) -> bool:
    """True when a client's metadata request (with `kafka`'s credentials) succeeds and names a
    broker."""

    async def probe() -> bool:
        client = AIOKafkaClient(**connection_options(kafka), request_timeout_ms=5000)
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except Exception:
            return False
        finally:
            await client.close()

    # A thread of its own, so that this works inside and outside a running event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, probe()).result()
