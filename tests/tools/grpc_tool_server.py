"""gRPC tool servers for the tests, on 127.0.0.1: `orloj.tool.v1.ToolService/Execute` with
protobuf messages described by server reflection (the descriptors are made here, no protoc),
or with Orloj's JSON payloads and no reflection. `handler` answers each request (a dict)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection

Handler = Callable[[dict[str, Any], grpc.aio.ServicerContext[Any, Any]], Awaitable[dict[str, Any]]]
_T = descriptor_pb2.FieldDescriptorProto


def _message(
    file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, str]]
) -> None:
    msg = file.message_type.add(name=name)
    for number, (field, kind, type_name) in enumerate(fields, start=1):
        entry = msg.field.add(name=field, number=number, label=_T.LABEL_OPTIONAL, type=kind)
        if type_name:
            entry.type_name = f".orloj.tool.v1.{type_name}"


def tool_proto() -> descriptor_pb2.FileDescriptorProto:
    """A protobuf form of Orloj's contract (a subset: the server reads what it declares)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="orloj/tool/v1/tool.proto", package="orloj.tool.v1", syntax="proto3"
    )
    s, m, b, i = _T.TYPE_STRING, _T.TYPE_MESSAGE, _T.TYPE_BOOL, _T.TYPE_INT32
    _message(file, "RequestTool", [("name", s, ""), ("operation", s, ""), ("risk_level", s, "")])
    _message(file, "Runtime", [("mode", s, ""), ("timeout_ms", i, ""), ("max_attempts", i, "")])
    _message(
        file,
        "ToolExecutionRequest",
        [
            ("tool_contract_version", s, ""),
            ("request_id", s, ""),
            ("task_id", s, ""),
            ("agent", s, ""),
            ("tool", m, "RequestTool"),
            ("input_raw", s, ""),
            ("runtime", m, "Runtime"),
            ("attempt", i, ""),
        ],
    )
    _message(file, "Output", [("result", s, "")])
    _message(
        file,
        "Failure",
        [("code", s, ""), ("reason", s, ""), ("retryable", b, ""), ("message", s, "")],
    )
    _message(
        file,
        "ToolExecutionResponse",
        [("status", s, ""), ("output", m, "Output"), ("error", m, "Failure")],
    )
    service = file.service.add(name="ToolService")
    service.method.add(
        name="Execute",
        input_type=".orloj.tool.v1.ToolExecutionRequest",
        output_type=".orloj.tool.v1.ToolExecutionResponse",
    )
    return file


class ToolServer:
    def __init__(self, handler: Handler, *, protobuf: bool = True) -> None:
        self.handler = handler
        self.protobuf = protobuf
        self.requests: list[dict[str, Any]] = []
        self.metadata: list[dict[str, str]] = []
        self.server = grpc.aio.server()
        self.port = 0

    async def _execute(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        as_dict = (
            json_format.MessageToDict(request, preserving_proto_field_name=True)
            if self.protobuf
            else json.loads(request)
        )
        self.requests.append(as_dict)
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        answer = await self.handler(as_dict, context)
        if not self.protobuf:
            return json.dumps(answer).encode()
        return json_format.ParseDict(answer, self._response())

    async def start(self) -> ToolServer:
        if self.protobuf:
            pool = descriptor_pool.DescriptorPool()
            pool.Add(tool_proto())
            service = pool.FindServiceByName("orloj.tool.v1.ToolService")
            request = message_factory.GetMessageClass(service.methods_by_name["Execute"].input_type)
            self._response = message_factory.GetMessageClass(
                service.methods_by_name["Execute"].output_type
            )
            method = grpc.unary_unary_rpc_method_handler(
                self._execute,
                request_deserializer=request.FromString,
                response_serializer=self._response.SerializeToString,
            )
            reflection.enable_server_reflection(
                ["orloj.tool.v1.ToolService", reflection.SERVICE_NAME], self.server, pool=pool
            )
        else:
            method = grpc.unary_unary_rpc_method_handler(self._execute)
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "orloj.tool.v1.ToolService", {"Execute": method}
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await self.server.stop(None)


async def answer_ok(request: dict[str, Any], context: Any) -> dict[str, Any]:
    query = json.loads(request.get("input_raw") or "{}").get("q", "")
    return {"status": "ok", "output": {"result": f"found {query}"}}


async def answer_slowly(request: dict[str, Any], context: Any) -> dict[str, Any]:
    await asyncio.sleep(5)
    return {"status": "ok", "output": {"result": "late"}}
