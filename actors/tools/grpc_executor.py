"""`grpc` tools: one unary call of `orloj.tool.v1.ToolService/Execute` on the endpoint
(`host:port`), carrying Orloj's `ToolExecutionRequest` and answered a `ToolExecutionResponse`
(`actors.tools.contract`).

How the envelope is encoded is asked of the server once, by gRPC server reflection: when it
describes `orloj.tool.v1.ToolService`, the JSON envelope is converted to the method's protobuf
request message (fields the server's message lacks are dropped) and its answer back to JSON;
when it has no reflection, or does not describe the service, the envelope is sent as JSON bytes,
as Orloj's JSON codec does. The tool's `auth` goes as call metadata (`authorization: Bearer
...`). TLS by default; plaintext only when the operator allows it
(`PODIUM_ACTOR_GRPC_TOOL_PLAINTEXT`, Orloj's opt-in to insecure gRPC)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import httpx
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message, message_factory
from grpc_reflection.v1alpha import reflection_pb2

from actors.tools import contract
from actors.tools._attempts import RetryableToolFailure, ToolFailure, run_runtime_attempts
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.credentials import ToolCredentials, masked
from manifests.models import Tool

SERVICE = "orloj.tool.v1.ToolService"
METHOD = f"/{SERVICE}/Execute"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
_NO_DESCRIPTION = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND})
"""Reflection answers that mean: no protobuf description, send JSON."""

_Messages = tuple[type[message.Message], type[message.Message]] | None
"""The request and response classes of `Execute`, or None for JSON."""


class GrpcToolExecutor:
    """Implements `ToolExecutor` for one `type: grpc` tool."""

    def __init__(
        self,
        manifest: Tool,
        *,
        plaintext: bool = False,
        credentials: ToolCredentials | None = None,
    ) -> None:
        self.manifest = manifest
        self.name = manifest.metadata.name
        self.target = manifest.spec.endpoint or ""
        self.credentials = credentials
        self.plaintext = plaintext
        self._open: grpc.aio.Channel | None = None
        self._http = httpx.AsyncClient(follow_redirects=False) if credentials else None
        self._messages: _Messages = None
        self._described = False

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        runtime = self.manifest.spec.runtime
        attempts = 0

        async def attempt(budget_s: float) -> str:
            nonlocal attempts
            attempts += 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + budget_s
            metadata: list[tuple[str, str]] = [("idempotency-key", invocation.idempotency_key)]
            if self.credentials is not None and self._http is not None:
                headers = await self.credentials.headers(self._http, budget_s)
                metadata += [(key.lower(), value) for key, value in headers.items()]
            envelope = contract.build_request(
                self.manifest, invocation, attempt=attempts, timeout_s=budget_s
            )
            try:
                messages = await self._describe(max(0.001, deadline - loop.time()))
                timeout = max(0.001, deadline - loop.time())
                if messages is None:
                    raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
                    raw = self._channel.unary_unary(METHOD)
                    answer = await raw(
                        json.dumps(envelope).encode(), timeout=timeout, metadata=metadata
                    )
                    return contract.parse_response(self.name, answer)
                request_type, response_type = messages
                request = json_format.ParseDict(
                    envelope, request_type(), ignore_unknown_fields=True
                )
                call = self._channel.unary_unary(
                    METHOD,
                    request_serializer=request_type.SerializeToString,
                    response_deserializer=response_type.FromString,
                )
                reply = await call(request, timeout=timeout, metadata=metadata)
                return contract.parse_response(
                    self.name, json_format.MessageToDict(reply, preserving_proto_field_name=True)
                )
            except grpc.aio.AioRpcError as exc:
                raise self._failure(exc) from exc

        return masked(await run_runtime_attempts(invocation, attempt, runtime), self.credentials)

    @property
    def _channel(self) -> grpc.aio.Channel:
        # Made at the first call: an aio channel belongs to the running event loop.
        if self._open is None:
            options = [
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ]
            self._open = (
                grpc.aio.insecure_channel(self.target, options=options)
                if self.plaintext
                else grpc.aio.secure_channel(self.target, grpc.ssl_channel_credentials(), options)
            )
        return self._open

    async def _describe(self, timeout_s: float) -> _Messages:
        """The protobuf messages of `Execute` by server reflection (asked once), or None."""
        if self._described:
            return self._messages
        reflect = self._channel.stream_stream(
            REFLECTION,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        ask = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
        files: list[bytes] = []
        try:
            async for answer in reflect(iter([ask]), timeout=timeout_s):
                if answer.HasField("error_response"):
                    if answer.error_response.error_code != grpc.StatusCode.NOT_FOUND.value[0]:
                        raise ToolFailure(
                            f"tool {self.name} failed (reflection)",
                            f"grpc reflection: {answer.error_response.error_message}",
                        )
                else:
                    files += answer.file_descriptor_response.file_descriptor_proto
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _NO_DESCRIPTION:
                raise
        self._messages = _messages(self.name, files) if files else None
        self._described = True
        return self._messages

    def _failure(self, exc: grpc.aio.AioRpcError) -> ToolFailure | RetryableToolFailure:
        code = exc.code()
        detail = f"grpc {code.name}: {(exc.details() or '')[:500]}"
        if code == grpc.StatusCode.UNAVAILABLE:
            return RetryableToolFailure(f"tool {self.name} is unreachable", detail)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return RetryableToolFailure(f"tool {self.name} timed out", detail)
        if code == grpc.StatusCode.UNAUTHENTICATED and self.credentials is not None:
            self.credentials.rejected()
        safe = f"tool {self.name} failed (gRPC {code.name})"
        if code in _RETRYABLE:
            return RetryableToolFailure(safe, detail)
        return ToolFailure(safe, detail)

    async def aclose(self) -> None:
        if self._open is not None:
            await self._open.close()
        if self._http is not None:
            await self._http.aclose()


def _messages(tool: str, files: list[bytes]) -> _Messages:
    """`Execute`'s request and response classes from the reflected files (with their
    dependencies, in any order)."""
    protos: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for data in files:
        proto = descriptor_pb2.FileDescriptorProto.FromString(data)
        protos[proto.name] = proto
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added or name not in protos:
            return  # a dependency the server did not send fails at `Add` below
        added.add(name)
        for dependency in protos[name].dependency:
            add(dependency)
        pool.Add(protos[name])

    try:
        for name in protos:
            add(name)
        method = pool.FindServiceByName(SERVICE).methods_by_name["Execute"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolFailure(
            f"tool {tool} failed (reflection)",
            f"grpc reflection: {SERVICE}/Execute cannot be described: {exc}",
        ) from exc
    classes: Any = (
        message_factory.GetMessageClass(method.input_type),
        message_factory.GetMessageClass(method.output_type),
    )
    return classes  # type: ignore[no-any-return]
