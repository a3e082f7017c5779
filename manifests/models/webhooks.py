"""TaskWebhook (Orloj's format): starts its task template once per signed external event.

`auth.profile` `generic` signs `<timestamp>.<body>` (HMAC-SHA256, hex, `sha256=` prefix) and
refuses a timestamp further than `max_skew_seconds` from now; `github` signs the body alone
(`X-Hub-Signature-256`). Each profile has its headers' defaults, as Orloj has them.

Beyond Orloj v0.3 (which has those two), for senders that sign otherwise: `hmac` takes the
`algorithm` (sha1, sha256, sha512) and the `signature_encoding` (hex, base64) and signs the body,
or `<timestamp>.<body>` when `timestamp_header` is set; `shared_token` carries the Secret's value
itself in `token_header` (a `Bearer ` prefix is allowed in `Authorization`). And
`idempotency.event_id_json_path` (`$.delivery.id`, `$.items[0].id`) takes the event id from the
JSON body instead of a header.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from manifests.models._base import ResourceBase, _Model
from manifests.models.secrets import SecretRef, parse_secret_ref

_REF = r"^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$"

PROFILE_DEFAULTS: dict[str, dict[str, str]] = {
    "generic": {
        "signature_header": "X-Signature",
        "signature_prefix": "sha256=",
        "timestamp_header": "X-Timestamp",
        "event_id_header": "X-Event-Id",
    },
    "github": {
        "signature_header": "X-Hub-Signature-256",
        "signature_prefix": "sha256=",
        "timestamp_header": "",
        "event_id_header": "X-GitHub-Delivery",
    },
    "hmac": {
        "signature_header": "X-Signature",
        "signature_prefix": "",
        "timestamp_header": "",
        "event_id_header": "X-Event-Id",
    },
    "shared_token": {
        "signature_header": "",
        "signature_prefix": "",
        "timestamp_header": "",
        "event_id_header": "X-Event-Id",
    },
}
DEDUPE_WINDOW_DEFAULTS = {"generic": 86400, "github": 259200, "hmac": 86400, "shared_token": 86400}
_HEADER = r"^([A-Za-z0-9-]+)?$"
_JSON_PATH = r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]{1,6}\])+$"


class WebhookAuth(_Model):
    profile: Literal["generic", "github", "hmac", "shared_token"] = "generic"
    secret_ref: SecretRef
    signature_header: str = Field(default="", pattern=_HEADER)
    signature_prefix: str = ""
    timestamp_header: str = Field(default="", pattern=_HEADER)
    max_skew_seconds: int = Field(default=300, ge=0, le=86400)
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    """`hmac` only: the HMAC's hash."""
    signature_encoding: Literal["hex", "base64"] = "hex"
    """`hmac` only: how the signature is written."""
    token_header: str = Field(default="", pattern=_HEADER)
    """`shared_token` only: the header holding the token (default `X-Webhook-Token`)."""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        profile = data.get("profile") or "generic"
        defaults = PROFILE_DEFAULTS.get(profile)
        if defaults is None:
            return data  # the Literal names the profiles there are
        if profile == "github" and data.get("timestamp_header"):
            raise ValueError("the github profile signs no timestamp: drop timestamp_header")
        if profile != "hmac" and ({"algorithm", "signature_encoding"} & data.keys()):
            raise ValueError("algorithm and signature_encoding belong to the hmac profile")
        if profile != "shared_token" and data.get("token_header"):
            raise ValueError("token_header belongs to the shared_token profile")
        if profile == "shared_token":
            signing = {"signature_header", "signature_prefix", "timestamp_header"} & data.keys()
            if signing:
                raise ValueError(
                    f"the shared_token profile signs nothing: drop {', '.join(sorted(signing))}"
                )
            data = {**data, "token_header": data.get("token_header") or "X-Webhook-Token"}
        return {
            **data,
            "profile": profile,
            **{k: data.get(k) or v for k, v in defaults.items() if k != "event_id_header"},
        }

    @property
    def secret_name(self) -> str:
        return parse_secret_ref(self.secret_ref)[1]

    @property
    def secret_key(self) -> str:
        return parse_secret_ref(self.secret_ref)[2]


class WebhookIdempotency(_Model):
    event_id_header: str = Field(default="", pattern=_HEADER)
    event_id_json_path: str = Field(default="", max_length=200, pattern=rf"({_JSON_PATH})|^$")
    """The event id's place in the JSON body (`$.delivery.id`); instead of a header."""
    dedupe_window_seconds: int | None = Field(default=None, ge=0, le=366 * 86400)

    @model_validator(mode="after")
    def _one_source(self) -> WebhookIdempotency:
        if self.event_id_header and self.event_id_json_path:
            raise ValueError("set event_id_header or event_id_json_path, not both")
        return self


class WebhookPayload(_Model):
    mode: Literal["raw"] = "raw"
    input_key: str = Field(default="webhook_payload", min_length=1, max_length=200)


class TaskWebhookSpec(_Model):
    task_ref: str = Field(min_length=1, pattern=_REF)
    suspend: bool = False
    auth: WebhookAuth
    idempotency: WebhookIdempotency = WebhookIdempotency()
    payload: WebhookPayload = WebhookPayload()

    @property
    def event_id_header(self) -> str:
        return (
            self.idempotency.event_id_header
            or (PROFILE_DEFAULTS[self.auth.profile]["event_id_header"])
        )

    @property
    def dedupe_window_seconds(self) -> int:
        window = self.idempotency.dedupe_window_seconds
        return DEDUPE_WINDOW_DEFAULTS[self.auth.profile] if window is None else window

    @property
    def task_name(self) -> str:
        return self.task_ref.rsplit("/", 1)[-1]


class TaskWebhook(ResourceBase):
    """Starts its task template once per signed delivery (per event id, in the dedupe window)."""

    kind_name: ClassVar[str] = "TaskWebhook"
    kind: Literal["TaskWebhook"]
    spec: TaskWebhookSpec
