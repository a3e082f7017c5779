"""Create or change SCRAM users on a cluster: Kafka's AlterUserScramCredentials (API key 51, v0).

aiokafka's admin client has no SCRAM API. The broker is sent the salt and the salted password
(RFC 5802: PBKDF2 of the password with HMAC-SHA-512), never the password itself, by the
cluster's admin principal. Upserting a user that exists replaces its credential.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from podium.core.settings import KafkaSettings
from topics.kafka import connection_options

SCRAM_SHA_512 = 2
"""The mechanism's id in the protocol (SCRAM-SHA-256 is 1)."""
ITERATIONS = 8192
"""Above Kafka's minimum (4096)."""


class AlterUserScramCredentialsResponse_v0(Response):  # type: ignore[misc]  # untyped protocol
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):  # type: ignore[misc]  # untyped protocol
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentials(Request[AlterUserScramCredentialsRequest_v0]):  # type: ignore[misc]  # untyped protocol
    API_KEY = 51

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = dict(passwords)

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        upsertions: list[tuple[object, ...]] = []
        for user, password in self._passwords.items():
            salt = secrets.token_bytes(32)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
            upsertions.append((user, SCRAM_SHA_512, ITERATIONS, salt, salted, {}))
        return request_struct_class([], upsertions, {})


class ScramError(RuntimeError):
    """The cluster refused a credential (the message names the user and Kafka's error)."""


async def upsert_scram_users(settings: KafkaSettings, passwords: Mapping[str, str]) -> None:
    """Make each user (SCRAM-SHA-512) with its password, as the principal of `settings`."""
    if not passwords:
        return
    client = AIOKafkaClient(**connection_options(settings), request_timeout_ms=30_000)
    try:
        await client.bootstrap()
        node = next(iter(client.cluster.brokers())).nodeId
        response = await client.send(node, AlterUserScramCredentials(passwords))
    finally:
        await client.close()
    problems = [
        f"{result['user']}: {for_code(result['error_code']).__name__} "
        f"{result['error_message'] or ''}"
        for result in response.to_object()["results"]
        if result["error_code"] != 0
    ]
    if problems:
        raise ScramError("could not set SCRAM credentials: " + "; ".join(problems))
