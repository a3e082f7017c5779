"""Model errors, translated once at the vendor boundary into Podium's two families."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from podium.core.errors import PermanentError, TransientError

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""4xx statuses worth retrying; every 5xx (and Anthropic's 529 "overloaded") is retryable too."""


class TransientModelError(TransientError):
    """A model call that may succeed when retried: 408/409/429/5xx, a timeout, a lost connection.

    `retry_after_s` carries the vendor's `retry-after` header when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        status_code: int | None = None,
        provider: str = "",
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.status_code = status_code
        self.provider = provider


class PermanentModelError(PermanentError):
    """A model call that cannot succeed as sent: bad request, authentication, a missing key."""

    def __init__(self, message: str, *, status_code: int | None = None, provider: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.provider = provider


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def error_for_status(
    provider: str, status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> TransientModelError | PermanentModelError:
    """The Podium error for an HTTP error status returned by a model vendor."""
    text = f"{provider}: HTTP {status_code}: {message}"
    if is_retryable_status(status_code):
        return TransientModelError(
            text,
            retry_after_s=parse_retry_after(headers),
            status_code=status_code,
            provider=provider,
        )
    return PermanentModelError(text, status_code=status_code, provider=provider)
