"""WASI guests for the wasm tool tests, as WAT text (wasmtime compiles it): Orloj's reference
echo guest, a guest that answers what stdin held, and misbehaving ones."""

from __future__ import annotations

import json
from pathlib import Path

ORLOJ_REFERENCE = Path(__file__).with_name("echo_guest.wat")
"""Orloj's examples/resources/tools/wasm-reference/echo_guest.wat, as shipped in v0.3.0."""


def _data(text: str) -> str:
    return "".join(f"\\{byte:02x}" for byte in text.encode())


def fixed(response: str) -> str:
    """A guest that writes `response` to stdout and returns (Orloj's reference guest's shape)."""
    return f"""(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{_data(response)}")
  (func (export "run")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len(response.encode())}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def upper_echo() -> str:
    """A guest that reads its request from stdin and answers `{"contract_version": "v1",
    "status": "ok", "output": <the request, as a JSON string>}`: the test reads what it got."""
    head = '{"contract_version":"v1","status":"ok","output":"'
    tail = '"}'
    return f"""(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 256) "{_data(head)}")
  (data (i32.const 512) "{_data(tail)}")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "run") (local $n i32) (local $i i32) (local $out i32) (local $c i32)
    ;; read stdin at 4096 (up to 32 KiB)
    (i32.store (i32.const 16) (i32.const 4096))
    (i32.store (i32.const 20) (i32.const 32768))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (local.set $n (i32.load (i32.const 24)))
    ;; escape quotes and backslashes into 65536..
    (local.set $out (i32.const 65536))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
      (if (i32.or (i32.eq (local.get $c) (i32.const 34)) (i32.eq (local.get $c) (i32.const 92)))
        (then (i32.store8 (local.get $out) (i32.const 92))
              (local.set $out (i32.add (local.get $out) (i32.const 1)))))
      (i32.store8 (local.get $out) (local.get $c))
      (local.set $out (i32.add (local.get $out) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $write (i32.const 256) (i32.const {len(head)}))
    (call $write (i32.const 65536) (i32.sub (local.get $out) (i32.const 65536)))
    (call $write (i32.const 512) (i32.const {len(tail)}))))
"""


TRAP = """(module (func (export "run") unreachable))"""
LOOP = """(module (func (export "run") (loop $forever (br $forever))))"""
GROW = """(module (memory 1) (func (export "run") (drop (memory.grow (i32.const 4000)))
  (if (i32.eq (memory.grow (i32.const 4000)) (i32.const -1)) (then unreachable))))"""
NO_RUN = """(module (func (export "main")))"""


def error_response(retryable: bool) -> str:
    return json.dumps(
        {
            "contract_version": "v1",
            "status": "error",
            "error": {
                "code": "rate_limited",
                "reason": "upstream quota",
                "retryable": retryable,
                "message": "try later",
            },
        }
    )
