"""The bad inputs every consumer gets: one builder per kind, from a valid message of the topic.

`bad_payloads(valid)` returns `(kind, key, value)` for: random bytes, truncated JSON, wrong types,
an unknown schema version, a 5 MB payload and a task_id of 10,000 characters. `partition_of(key)`
is the partition Kafka's default partitioner picks, so a valid message can follow the bad ones on
the same partition (proof that the consumer of that partition did not stop).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import msgspec
from aiokafka.partitioner import DefaultPartitioner

from topics.codec import encode

KINDS = (
    "random-bytes",
    "truncated-json",
    "wrong-types",
    "unknown-schema-version",
    "5mb-payload",
    "10k-task-id",
)
FIVE_MB = 5 * 1024 * 1024
LONG_ID = "x" * 10_000


def bad_payloads(
    make: Callable[[str], msgspec.Struct], big_field: str, tag: str
) -> list[tuple[str, str, bytes, bytes]]:
    """The six bad inputs as `(kind, task_id, key, value)`, each built from a valid message
    `make(task_id)` of the topic with its own task id; `big_field` carries the 5 MB."""
    rng = random.Random(7)
    out: list[tuple[str, str, bytes, bytes]] = []
    for kind in KINDS:
        task_id = LONG_ID if kind == "10k-task-id" else f"bad-{tag}-{kind}"
        doc: dict[str, Any] = json.loads(encode(make(f"bad-{tag}-{kind}")))
        doc["task_id"] = task_id
        whole = json.dumps(doc).encode()
        value = {
            "random-bytes": rng.randbytes(512),
            "truncated-json": whole[: len(whole) // 2],
            "wrong-types": json.dumps({**doc, "task_id": 12345, "system": ["x"]}).encode(),
            "unknown-schema-version": json.dumps({**doc, "schema_version": 99}).encode(),
            "5mb-payload": json.dumps({**doc, big_field: "y" * FIVE_MB}).encode(),
            "10k-task-id": whole,
        }[kind]
        out.append((kind, task_id, task_id.encode(), value))
    return out


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of `key` under the default (murmur2) partitioner."""
    ids = list(range(partitions))
    return int(DefaultPartitioner()(key, ids, ids))


def ids_per_partition(prefix: str, partitions: int) -> dict[int, str]:
    """One task id landing on each partition."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        task_id = f"{prefix}-{n}"
        found.setdefault(partition_of(task_id.encode(), partitions), task_id)
        n += 1
    return found
