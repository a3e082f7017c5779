"""The decisions of a TaskWebhook delivery, as pure functions: is it signed by the secret (and
fresh, where the profile signs a timestamp), what is its event id, what task input it makes, and
which task id it starts (the same for every delivery of one event). `ledger/webhooks.py` does the
I/O around them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from manifests.models.webhooks import TaskWebhook

MAX_BODY_BYTES = 1 << 20
"""A delivery's body is at most 1 MiB (Orloj's limit too); more is 413."""


class DeliveryRefused(ValueError):
    """The delivery is refused; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_timestamp(value: str) -> datetime:
    """Unix seconds, Unix milliseconds (over 10^12) or RFC 3339, in UTC."""
    text = value.strip()
    try:
        if text.isascii() and text.isdigit():
            n = int(text)
            return datetime.fromtimestamp(n / 1000 if n > 10**12 else n, UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise DeliveryRefused(401, f"the timestamp {value[:40]!r} is not a time") from None
    if parsed.tzinfo is None:
        raise DeliveryRefused(401, "the timestamp has no time zone")
    return parsed.astimezone(UTC)


_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def verify_signature(
    hook: TaskWebhook, headers: Mapping[str, str], body: bytes, secret: bytes, now: datetime
) -> None:
    """Refuse (401) a delivery not authenticated by the secret: for `shared_token`, the token
    header is not the secret; otherwise the HMAC is not the secret's, or the signed timestamp is
    further than `max_skew_seconds` from `now`."""
    auth = hook.spec.auth
    if auth.profile == "shared_token":
        _verify_token(auth.token_header, headers, secret)
        return
    received = headers.get(auth.signature_header.lower(), "").strip()
    if not received:
        raise DeliveryRefused(401, f"the signature header {auth.signature_header} is missing")
    prefix = auth.signature_prefix
    if prefix:
        if received[: len(prefix)].lower() != prefix.lower():
            raise DeliveryRefused(401, f"the signature does not start with {prefix!r}")
        received = received[len(prefix) :].strip()
    signed = body
    if auth.timestamp_header:
        stamp = headers.get(auth.timestamp_header.lower(), "").strip()
        if not stamp:
            raise DeliveryRefused(401, f"the timestamp header {auth.timestamp_header} is missing")
        if abs(now - parse_timestamp(stamp)) > timedelta(seconds=auth.max_skew_seconds):
            raise DeliveryRefused(
                401, f"the timestamp is more than {auth.max_skew_seconds}s from now (stale)"
            )
        signed = stamp.encode() + b"." + body
    mac = hmac.new(secret, signed, _DIGESTS[auth.algorithm]).digest()
    if auth.signature_encoding == "base64":
        expected, given = base64.b64encode(mac), received.encode("ascii", "replace")
    else:
        expected, given = mac.hex().encode(), received.lower().encode("ascii", "replace")
    if not hmac.compare_digest(expected, given):
        raise DeliveryRefused(401, "the signature does not match")


def _verify_token(header: str, headers: Mapping[str, str], secret: bytes) -> None:
    received = headers.get(header.lower(), "").strip()
    if header.lower() == "authorization" and received[:7].lower() == "bearer ":
        received = received[7:].strip()
    if not received:
        raise DeliveryRefused(401, f"the token header {header} is missing")
    if not hmac.compare_digest(received.encode("utf-8", "replace"), secret):
        raise DeliveryRefused(401, "the token does not match")


def event_id(hook: TaskWebhook, headers: Mapping[str, str], body: bytes = b"") -> str:
    """The delivery's event id, from its header or its place in the JSON body (400 without
    one)."""
    path = hook.spec.idempotency.event_id_json_path
    if path:
        value = _at_json_path(body, path)
    else:
        header = hook.spec.event_id_header
        value = headers.get(header.lower(), "").strip()
        if not value:
            raise DeliveryRefused(400, f"the event id header {header} is missing")
    if len(value) > 200:
        raise DeliveryRefused(400, "the event id is longer than 200 characters")
    return value


_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]")


def _at_json_path(body: bytes, path: str) -> str:
    """The string or integer at `path` (`$.a.b[0]`) of the JSON body (400 when there is none)."""
    try:
        value: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise DeliveryRefused(400, f"the body is not JSON, so it has no {path}") from None
    for name, index in _STEP.findall(path[1:]):
        if name and isinstance(value, dict):
            value = value.get(name)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            value = None
        if value is None:
            break
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise DeliveryRefused(400, f"the body has no event id (a string or integer) at {path}")
    return str(value)


def task_input(
    hook: TaskWebhook,
    template_input: Mapping[str, Any],
    body: bytes,
    *,
    event: str,
    received_at: datetime,
) -> dict[str, Any]:
    """The template's input with the body's text under `payload.input_key` (mode raw, as
    Orloj has it) and the delivery's event id, time and profile (400 if it is not UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryRefused(400, "the body is not UTF-8") from None
    return {
        **template_input,
        hook.spec.payload.input_key: text,
        "webhook_event_id": event,
        "webhook_received_at": received_at.astimezone(UTC).isoformat(),
        "webhook_source": hook.spec.auth.profile,
    }


def webhook_task_id(webhook: str, event: str) -> str:
    """`webhook-<name>-` and 24 hex digits of the event id's SHA-256: one task per event."""
    digest = hashlib.sha256(f"{webhook}\0{event}".encode()).hexdigest()
    return f"webhook-{webhook}-{digest[:24]}"
