"""TaskWebhook deliveries, decided without I/O: GitHub and generic HMAC signatures, stale and
forged ones, event ids, the task input of a payload, and one task id per event."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.webhook_signatures import (
    DeliveryRefused,
    event_id,
    parse_timestamp,
    task_input,
    verify_signature,
    webhook_task_id,
)
from manifests.models.webhooks import TaskWebhook

SECRET = b"s3cret"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BODY = b'{"ref": "refs/heads/main", "commits": 2}'


def hook(profile: str = "generic", **auth: Any) -> TaskWebhook:
    return TaskWebhook.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "TaskWebhook",
            "metadata": {"name": "push"},
            "spec": {
                "task_ref": "report-task",
                "auth": {"profile": profile, "secret_ref": "hook-secret", **auth},
            },
        }
    )


def sign(payload: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, payload, hashlib.sha256).hexdigest()


def generic_headers(stamp: str, body: bytes = BODY, secret: bytes = SECRET) -> dict[str, str]:
    return {
        "x-timestamp": stamp,
        "x-signature": sign(stamp.encode() + b"." + body, secret),
        "x-event-id": "evt-1",
    }


def test_profiles_default_their_headers_and_windows() -> None:
    github, generic = hook("github"), hook()
    assert github.spec.auth.signature_header == "X-Hub-Signature-256"
    assert github.spec.auth.timestamp_header == ""
    assert github.spec.event_id_header == "X-GitHub-Delivery"
    assert github.spec.dedupe_window_seconds == 259200
    assert generic.spec.auth.timestamp_header == "X-Timestamp"
    assert generic.spec.event_id_header == "X-Event-Id"
    assert generic.spec.dedupe_window_seconds == 86400
    assert generic.spec.payload.input_key == "webhook_payload"


@pytest.mark.parametrize(
    ("auth", "needle"),
    [
        ({"profile": "slack"}, "profile"),
        ({"profile": "github", "timestamp_header": "X-T"}, "signs no timestamp"),
        ({"max_skew_seconds": -1}, "max_skew_seconds"),
        ({"signature_header": "bad header!"}, "signature_header"),
        ({"surprise": 1}, "surprise"),
        ({"algorithm": "sha512"}, "belong to the hmac profile"),
        ({"profile": "github", "token_header": "X-T"}, "belongs to the shared_token profile"),
        ({"profile": "shared_token", "signature_header": "X-S"}, "signs nothing"),
        ({"profile": "hmac", "algorithm": "md5"}, "algorithm"),
    ],
)
def test_what_the_model_refuses(auth: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        hook(**auth)


def test_a_github_delivery_signed_with_the_secret_passes() -> None:
    verify_signature(hook("github"), {"x-hub-signature-256": sign(BODY)}, BODY, SECRET, NOW)


@pytest.mark.parametrize(
    "signature",
    [sign(BODY, b"other"), sign(BODY + b" "), sign(BODY)[7:], "sha256=zz", "sha256=é", ""],
)
def test_a_forged_github_delivery_is_401(signature: str) -> None:
    with pytest.raises(DeliveryRefused) as refused:
        verify_signature(hook("github"), {"x-hub-signature-256": signature}, BODY, SECRET, NOW)
    assert refused.value.status == 401


def test_a_generic_delivery_signs_timestamp_and_body() -> None:
    stamp = str(int(NOW.timestamp()))
    verify_signature(hook(), generic_headers(stamp), BODY, SECRET, NOW)
    # the same signature over another body, or another timestamp, fails
    with pytest.raises(DeliveryRefused, match="does not match"):
        verify_signature(hook(), generic_headers(stamp), BODY + b"x", SECRET, NOW)
    forged = {**generic_headers(stamp), "x-timestamp": str(int(NOW.timestamp()) + 1)}
    with pytest.raises(DeliveryRefused, match="does not match"):
        verify_signature(hook(), forged, BODY, SECRET, NOW)


@pytest.mark.parametrize("age_s", [301, -301, 86400])
def test_a_stale_generic_delivery_is_401_even_well_signed(age_s: int) -> None:
    stamp = (NOW - timedelta(seconds=age_s)).isoformat()
    with pytest.raises(DeliveryRefused, match="stale") as refused:
        verify_signature(hook(), generic_headers(stamp), BODY, SECRET, NOW)
    assert refused.value.status == 401


def test_the_skew_is_the_manifests() -> None:
    stamp = str(int((NOW - timedelta(seconds=100)).timestamp()))
    with pytest.raises(DeliveryRefused, match="stale"):
        verify_signature(hook(max_skew_seconds=60), generic_headers(stamp), BODY, SECRET, NOW)
    verify_signature(hook(max_skew_seconds=120), generic_headers(stamp), BODY, SECRET, NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1767323045", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("1767323045000", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_timestamps(value: str, expected: datetime) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["soon", "2026-01-02T03:04:05", "9" * 40])
def test_bad_timestamps_are_401(value: str) -> None:
    with pytest.raises(DeliveryRefused) as refused:
        parse_timestamp(value)
    assert refused.value.status == 401


def test_event_ids_come_from_the_profiles_header() -> None:
    assert event_id(hook("github"), {"x-github-delivery": " d-1 "}) == "d-1"
    with pytest.raises(DeliveryRefused) as refused:
        event_id(hook(), {"x-github-delivery": "d-1"})
    assert refused.value.status == 400


def test_the_raw_body_goes_under_the_input_key_with_the_delivery_as_orloj_has_it() -> None:
    made = task_input(hook(), {"audience": "ops"}, BODY, event="e-1", received_at=NOW)
    assert made == {
        "audience": "ops",
        "webhook_payload": BODY.decode(),
        "webhook_event_id": "e-1",
        "webhook_received_at": NOW.isoformat(),
        "webhook_source": "generic",
    }
    github = task_input(hook("github"), {}, b"plain text", event="d", received_at=NOW)
    assert github["webhook_payload"] == "plain text" and github["webhook_source"] == "github"
    with pytest.raises(DeliveryRefused) as refused:
        task_input(hook(), {}, b"\xff\xfe", event="e", received_at=NOW)
    assert refused.value.status == 400


def test_one_task_id_per_webhook_and_event() -> None:
    assert webhook_task_id("push", "e1") == webhook_task_id("push", "e1")
    assert webhook_task_id("push", "e1") != webhook_task_id("push", "e2")
    assert webhook_task_id("push", "e1") != webhook_task_id("pull", "e1")


def hooked(profile: str, auth: dict[str, Any], idempotency: dict[str, Any]) -> TaskWebhook:
    return TaskWebhook.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "TaskWebhook",
            "metadata": {"name": "push"},
            "spec": {
                "task_ref": "report-task",
                "auth": {"profile": profile, "secret_ref": "hook-secret", **auth},
                "idempotency": idempotency,
            },
        }
    )


@pytest.mark.parametrize(
    ("algorithm", "encoding"),
    [("sha1", "base64"), ("sha256", "hex"), ("sha512", "base64"), ("sha512", "hex")],
)
def test_an_hmac_delivery_is_signed_with_its_algorithm_and_encoding(
    algorithm: str, encoding: str
) -> None:
    webhook = hook("hmac", algorithm=algorithm, signature_encoding=encoding)
    mac = hmac.new(SECRET, BODY, getattr(hashlib, algorithm)).digest()
    signature = mac.hex() if encoding == "hex" else base64.b64encode(mac).decode()
    verify_signature(webhook, {"x-signature": signature}, BODY, SECRET, NOW)
    other = hmac.new(SECRET, BODY, hashlib.md5).digest().hex()
    for forged in (other, signature[:-2] + "AA", ""):
        with pytest.raises(DeliveryRefused) as refused:
            verify_signature(webhook, {"x-signature": forged}, BODY, SECRET, NOW)
        assert refused.value.status == 401


def test_an_hmac_delivery_with_a_timestamp_header_signs_it_and_refuses_stale_ones() -> None:
    webhook = hook("hmac", timestamp_header="X-Sent-At", algorithm="sha512")
    stamp = str(int(NOW.timestamp()))
    mac = hmac.new(SECRET, stamp.encode() + b"." + BODY, hashlib.sha512).hexdigest()
    verify_signature(webhook, {"x-sent-at": stamp, "x-signature": mac}, BODY, SECRET, NOW)
    late = NOW + timedelta(seconds=301)
    with pytest.raises(DeliveryRefused, match="stale"):
        verify_signature(webhook, {"x-sent-at": stamp, "x-signature": mac}, BODY, SECRET, late)


@pytest.mark.parametrize(
    ("header", "headers"),
    [
        ("", {"x-webhook-token": "s3cret"}),
        ("X-Token", {"x-token": " s3cret "}),
        ("Authorization", {"authorization": "Bearer s3cret"}),
    ],
)
def test_a_shared_token_delivery_carries_the_secret(header: str, headers: dict[str, str]) -> None:
    webhook = hook("shared_token", **({"token_header": header} if header else {}))
    verify_signature(webhook, headers, BODY, SECRET, NOW)
    wrong = {k: v.replace("s3cret", "s3creT") for k, v in headers.items()}
    for refused_headers in (wrong, {}):
        with pytest.raises(DeliveryRefused) as refused:
            verify_signature(webhook, refused_headers, BODY, SECRET, NOW)
        assert refused.value.status == 401


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("$.delivery.id", b'{"delivery": {"id": "d-7"}}', "d-7"),
        ("$.items[1].id", b'{"items": [{"id": 1}, {"id": 42}]}', "42"),
        ("$.id", b'{"id": "  spaced "}', "  spaced "),
    ],
)
def test_the_event_id_can_come_from_the_json_body(path: str, body: bytes, expected: str) -> None:
    webhook = hooked("generic", {}, {"event_id_json_path": path})
    assert event_id(webhook, {"x-event-id": "ignored"}, body) == expected


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"delivery": {}}', b'{"delivery": {"id": true}}', b'{"delivery": []}', b"[]"],
)
def test_a_body_without_its_event_id_is_400(body: bytes) -> None:
    webhook = hooked("generic", {}, {"event_id_json_path": "$.delivery.id"})
    with pytest.raises(DeliveryRefused) as refused:
        event_id(webhook, {}, body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "idempotency",
    [
        {"event_id_json_path": "delivery.id"},
        {"event_id_json_path": "$..id"},
        {"event_id_header": "X-Id", "event_id_json_path": "$.id"},
    ],
)
def test_bad_event_id_sources_are_refused(idempotency: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        hooked("generic", {}, idempotency)
