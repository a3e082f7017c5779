"""Create ACL bindings on a cluster: Kafka's CreateAcls request (API key 30, v2-v3).

aiokafka's admin client has no ACL API, and the versions its protocol module defines (v0-v1)
are gone from Kafka 4. This module adds the flexible versions with aiokafka's own protocol
types and sends every binding in one request, as the cluster's admin principal. Creating a
binding that exists is a no-op on the broker, so applying a table twice is safe.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from podium.core.settings import KafkaSettings
from topics.acls import AclBinding
from topics.kafka import connection_options

_RESOURCE_TYPES = {"TOPIC": 2, "GROUP": 3, "TRANSACTIONAL_ID": 5}
_PATTERN_TYPES = {"LITERAL": 3, "PREFIXED": 4}
_OPERATIONS = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8, "DESCRIBE_CONFIGS": 10}
_ALLOW = 3


class CreateAclsResponse_v2(Response):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 30
    API_VERSION = 2
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class CreateAclsResponse_v3(Response):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 30
    API_VERSION = 3
    SCHEMA = CreateAclsResponse_v2.SCHEMA


_CREATIONS = Schema(
    (
        "creations",
        CompactArray(
            ("resource_type", Int8),
            ("resource_name", CompactString("utf-8")),
            ("resource_pattern_type", Int8),
            ("principal", CompactString("utf-8")),
            ("host", CompactString("utf-8")),
            ("operation", Int8),
            ("permission_type", Int8),
            ("tags", TaggedFields),
        ),
    ),
    ("tags", TaggedFields),
)


class CreateAclsRequest_v2(RequestStruct):  # type: ignore[misc]  # aiokafka.protocol is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 2
    RESPONSE_TYPE = CreateAclsResponse_v2
    SCHEMA = _CREATIONS


class CreateAclsRequest_v3(RequestStruct):  # type: ignore[misc]  # aiokafka.protocol is untyped
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 3
    RESPONSE_TYPE = CreateAclsResponse_v3
    SCHEMA = _CREATIONS


class CreateAcls(Request[CreateAclsRequest_v2 | CreateAclsRequest_v3]):  # type: ignore[misc]  # aiokafka.protocol is untyped
    API_KEY = 30

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self._bindings = list(bindings)

    def build(
        self, request_struct_class: type[CreateAclsRequest_v2 | CreateAclsRequest_v3]
    ) -> CreateAclsRequest_v2 | CreateAclsRequest_v3:
        creations: list[tuple[object, ...]] = [
            (
                _RESOURCE_TYPES[b.resource_type],
                b.name,
                _PATTERN_TYPES[b.pattern_type],
                b.principal,
                "*",
                _OPERATIONS[b.operation],
                _ALLOW,
                {},
            )
            for b in self._bindings
        ]
        return request_struct_class(creations, {})


class AclError(RuntimeError):
    """The cluster refused to create a binding (the message names it and Kafka's error)."""


async def create_acls(settings: KafkaSettings, bindings: Sequence[AclBinding]) -> None:
    """Create `bindings` (ALLOW, any host) as the principal of `settings`, in one request."""
    if not bindings:
        return
    client = AIOKafkaClient(**connection_options(settings), request_timeout_ms=30_000)
    try:
        await client.bootstrap()
        node = next(iter(client.cluster.brokers())).nodeId
        response = await client.send(node, CreateAcls(bindings))
    finally:
        await client.close()
    results = response.to_object()["results"]
    problems = [
        f"{binding}: {for_code(result['error_code']).__name__} {result['error_message'] or ''}"
        for binding, result in zip(bindings, results, strict=True)
        if result["error_code"] != 0
    ]
    if problems:
        raise AclError("could not create ACLs: " + "; ".join(problems))
